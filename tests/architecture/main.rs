//! The house's rules, held against the code on every test run: which way
//! imports may run between doorward's rooms (docs/architecture.md), no
//! import circles between sibling modules, and no file in `src/` over 600
//! lines. Reads the source as text; test code (`#[cfg(test)]` modules and
//! the files they name) is left out, since tests may reach anywhere.

mod graph;

use graph::{ModulePath, SourceTree};

/// `from` must not import `to` (nor anything inside it). Each pair names the
/// rule of docs/architecture.md it holds.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    // Protocols are siblings that know neither each other, the dispatcher
    // above them, sessions, the store nor the request path.
    ("saml", "oidc", "protocols are siblings"),
    ("oidc", "saml", "protocols are siblings"),
    ("saml", "providers", "protocols sit below the provider layer"),
    ("oidc", "providers", "protocols sit below the provider layer"),
    ("saml", "session", "protocols know no sessions"),
    ("oidc", "session", "protocols know no sessions"),
    ("saml", "store", "protocols know no store"),
    ("oidc", "store", "protocols know no store"),
    ("saml", "auth", "protocols know no request path"),
    ("oidc", "auth", "protocols know no request path"),
    ("saml", "proxy", "protocols know no request path"),
    ("oidc", "proxy", "protocols know no request path"),
    // jws is the signature floor under the protocols and the signals
    // receiver: it imports nothing above identity and clock.
    ("jws", "oidc", "jws is below the protocols"),
    ("jws", "saml", "jws is below the protocols"),
    ("jws", "signals", "jws is below the signals receiver"),
    ("jws", "assertion", "jws is below the protocols"),
    ("jws", "login", "jws is below login"),
    ("jws", "config", "jws is below config"),
    ("oidc", "signals", "oidc and signals share only jws"),
    ("signals", "oidc", "oidc and signals share only jws"),
    // The provider layer sits above the protocols and below the gate.
    ("providers", "session", "providers know no sessions"),
    ("providers", "store", "providers know no store"),
    ("providers", "auth", "providers are below the gate"),
    ("providers", "proxy", "providers are below the request path"),
    // login/ is the neutral floor below the protocols and below sessions.
    ("login", "oidc", "login is below the protocols"),
    ("login", "saml", "login is below the protocols"),
    ("login", "providers", "login is below the provider layer"),
    ("login", "session", "login is below sessions"),
    ("login", "auth", "login is below auth"),
    ("login", "store", "login knows no store"),
    // SCIM writes the directory through a handle; it knows neither auth nor
    // sessions.
    ("scim", "auth", "scim writes through the directory handle"),
    ("scim", "session", "scim knows no sessions"),
    ("scim", "proxy", "scim knows no request path"),
    // Shared signals change identity through the directory handle too.
    ("signals", "auth", "signals write through the directory handle"),
    ("signals", "session", "signals know no sessions"),
    ("signals", "proxy", "signals know no request path"),
    ("signals", "scim", "signals and SCIM are siblings"),
    ("scim", "signals", "signals and SCIM are siblings"),
    ("directory", "signals", "the directory handle is below signals"),
    ("directory", "auth", "the directory handle is below auth"),
    ("directory", "scim", "the directory handle is below scim"),
    ("directory", "session", "the directory handle is below sessions"),
    // Operators revoke through the directory handle and the store, like
    // every other input that changes identity.
    // Generations and the registry of long-lived admissions are a floor
    // that sessions, auth and the request path all stand on.
    ("access", "session", "access is below sessions"),
    ("access", "auth", "access is below the gate"),
    ("access", "proxy", "access is below the request path"),
    ("access", "store", "access knows no store"),
    ("admin", "auth", "operators revoke through the directory handle"),
    ("admin", "session", "operators revoke through the directory handle"),
    ("admin", "proxy", "the admin API knows no request path"),
    ("admin", "scim", "operators and SCIM are siblings"),
    ("store", "admin", "the store knows rows"),
    // The store knows rows.
    ("store", "session", "the store knows rows"),
    ("store", "auth", "the store knows rows"),
    ("store", "identity", "the store knows rows"),
    ("store", "scim", "the store knows rows"),
    // The identity engine is pure.
    ("identity", "store", "identity is pure"),
    ("identity", "session", "identity is pure"),
    ("identity", "auth", "identity is pure"),
    ("identity", "metrics", "identity is pure"),
    // Responses come from respond/, below proxy and auth.
    ("respond", "auth", "respond is below auth"),
    ("respond", "proxy", "respond is below proxy"),
    ("respond", "session", "respond is below sessions"),
    // Sessions are below the gate and the request path.
    ("session", "auth", "sessions are below auth"),
    ("session", "proxy", "sessions are below the request path"),
    ("auth", "proxy", "the gate is below the request path"),
    ("auth", "server", "the gate is below the server"),
];

/// Modules that hold only the schema may import nothing that runs.
const CONFIG_MAY_IMPORT: &[&str] = &["paths", "serving", "secret"];

/// Small shared modules that config converts into: they must not import it.
const BELOW_CONFIG: &[&str] = &[
    "clock",
    "paths",
    "secret",
    "telemetry",
    "metrics",
    "memory",
    "tls",
    "keyring",
    "idp_http",
];

const MAX_LINES: usize = 600;

fn tree() -> SourceTree {
    SourceTree::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).expect("read src/")
}

#[test]
fn imports_run_the_way_the_house_allows() {
    let tree = tree();
    let mut broken = Vec::new();
    for (from, to, rule) in FORBIDDEN {
        for (file, target) in tree.imports_between(&ModulePath::parse(from), &ModulePath::parse(to)) {
            broken.push(format!("{file}: imports {target} ({rule})"));
        }
    }
    for target in tree.rooms_imported_by("config") {
        if !CONFIG_MAY_IMPORT.contains(&target.as_str()) {
            broken.push(format!("config imports {target} (config imports nothing that runs)"));
        }
    }
    for small in BELOW_CONFIG {
        for (file, target) in tree.imports_between(&ModulePath::parse(small), &ModulePath::parse("config")) {
            broken.push(format!(
                "{file}: imports {target} (config converts into small shared modules, not the reverse)"
            ));
        }
    }
    assert!(broken.is_empty(), "import rules broken:\n{}", broken.join("\n"));
}

#[test]
fn no_import_circles_between_sibling_modules() {
    let circles = tree().sibling_cycles();
    let lines: Vec<String> = circles
        .iter()
        .map(|c| format!("these import each other in a circle: {}", c.join(", ")))
        .collect();
    assert!(lines.is_empty(), "import circles:\n{}", lines.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = tree()
        .files()
        .filter(|f| !f.is_test && f.lines > MAX_LINES)
        .map(|f| format!("{} ({} lines)", f.path, f.lines))
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines:\n{}", long.join("\n"));
}

/// The reader itself: a cycle and a forbidden edge in a small made-up tree
/// are found, so the rules above cannot pass by reading nothing.
#[test]
fn the_reader_finds_what_it_is_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |path: &str, text: &str| {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a/mod.rs", "use crate::b::Thing;\npub mod inner;\n");
    write("a/inner.rs", "use super::super::c::{self, Other};\n");
    write(
        "b.rs",
        "use crate::{a::inner::X, c};\n#[cfg(test)]\nmod tests { use crate::c::Y; }\n",
    );
    write(
        "c.rs",
        "pub fn f() { crate::a::g(); }\n#[cfg(test)]\n#[path = \"c_tests.rs\"]\nmod tests;\n",
    );
    write("c_tests.rs", "use crate::b::Z;\n");
    let tree = SourceTree::read(dir.path()).expect("read");
    let circles = tree.sibling_cycles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    let mut members = circles[0].clone();
    members.sort();
    members.dedup();
    assert_eq!(members, ["a", "b", "c"]);
    let edges = tree.imports_between(&ModulePath::parse("b"), &ModulePath::parse("c"));
    assert_eq!(edges.len(), 1, "the test module's import is left out: {edges:?}");
    assert!(tree
        .imports_between(&ModulePath::parse("c"), &ModulePath::parse("b"))
        .is_empty());
    assert!(tree.files().any(|f| f.path.ends_with("c_tests.rs") && f.is_test));
}
