//! What a reload changed: key paths that differ between two config files,
//! which of them need a restart (and pinning their running values), and
//! which providers are the same in both.

use crate::config::Config;

/// Settings read only at start (listeners, TLS, the store, the runtime,
/// logging, what the kept session manager was built with). A changed one
/// is named in a warning and stays as it was until a restart. A key path
/// matches itself and everything under it.
const RESTART_ONLY: &[&str] = &[
    "server.listen",
    "server.tls",
    "server.worker_threads",
    "server.runtime",
    "server.http2",
    "server.header_read_timeout",
    "server.idle_timeout",
    "server.max_header_bytes",
    "server.max_connections",
    "server.http2_max_concurrent_streams",
    "server.metrics_listen",
    "server.shutdown_grace",
    "server.reload_watch",
    "store",
    "log.format",
    "log.level",
    // The audit layer and its sink are installed once, with the log.
    "audit",
    // So is the OpenTelemetry layer and its exporter.
    "traces",
    "scim.enabled",
    "scim.listen",
    "admin.listen",
    "session.cookie_name",
    "session.cookie_domain",
    "session.insecure_cookie_not_secure",
    "session.idle_timeout",
    "session.absolute_timeout",
    "session.cache_capacity",
    "session.cache_max_bytes",
    "headers.pass_access_token",
    "headers.pass_id_token",
];

/// Puts the running values of restart-only settings that the request path
/// reads into the new config, so it is built as the process really runs.
pub(super) fn pin_restart_only(new: &mut Config, running: &Config) {
    new.server.listen = running.server.listen;
    new.server.tls.clone_from(&running.server.tls);
    new.server.metrics_listen = running.server.metrics_listen;
    new.server.idle_timeout = running.server.idle_timeout;
    new.server.reload_watch = running.server.reload_watch;
    new.scim.enabled = running.scim.enabled;
    new.scim.listen = running.scim.listen;
    new.admin.listen = running.admin.listen;
    new.session.cookie_name.clone_from(&running.session.cookie_name);
    new.session.cookie_domain.clone_from(&running.session.cookie_domain);
    new.session.insecure_cookie_not_secure = running.session.insecure_cookie_not_secure;
    new.headers.pass_access_token = running.headers.pass_access_token;
    new.headers.pass_id_token = running.headers.pass_id_token;
}

pub(super) fn restart_only(key: &str) -> bool {
    RESTART_ONLY.iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    })
}

/// The file as a TOML table; empty when it does not parse (a reload only
/// gets this far with a file that does).
pub(super) fn raw_table(bytes: &[u8]) -> toml::Table {
    toml::from_str(&String::from_utf8_lossy(bytes)).unwrap_or_default()
}

pub(super) fn server_key<'a>(raw: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    raw.get("server").and_then(|s| s.get(key))
}

/// Providers (by name) whose table is the same in both files, and whose
/// URLs cannot have changed: those keep their state across the reload.
pub(super) fn unchanged_providers(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let same_urls = ["public_url", "internal_prefix"]
        .iter()
        .all(|k| server_key(old, k) == server_key(new, k));
    if !same_urls {
        return Vec::new();
    }
    let providers = |raw: &toml::Table| -> Vec<toml::Value> {
        raw.get("provider")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let before = providers(old);
    providers(new)
        .iter()
        .filter(|p| before.contains(p))
        .filter_map(|p| p.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect()
}

/// Key paths (`route[1].upstream`) whose values differ between two files.
pub fn diff(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    diff_tables("", old, new, &mut out);
    out
}

fn diff_tables(prefix: &str, old: &toml::Table, new: &toml::Table, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        diff_values(&path, old.get(key), new.get(key), out);
    }
}

fn diff_values(path: &str, old: Option<&toml::Value>, new: Option<&toml::Value>, out: &mut Vec<String>) {
    match (old, new) {
        (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => diff_tables(path, a, b, out),
        (Some(toml::Value::Array(a)), Some(toml::Value::Array(b)))
            if a.len() == b.len() && a.iter().chain(b).all(toml::Value::is_table) =>
        {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).expect("toml")
    }

    #[test]
    fn diff_names_each_changed_leaf_with_its_index() {
        let old = table("[server]\nlisten = \"127.0.0.1:1\"\n[[route]]\nname = \"a\"\nupstream = \"http://x\"\n");
        let new = table("[server]\nlisten = \"127.0.0.1:2\"\n[[route]]\nname = \"a\"\nupstream = \"http://y\"\n");
        assert_eq!(diff(&old, &new), ["route[0].upstream", "server.listen"]);
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn a_new_route_is_named_as_the_list() {
        let old = table("[[route]]\nname = \"a\"\n");
        let new = table("[[route]]\nname = \"a\"\n[[route]]\nname = \"b\"\n");
        assert_eq!(diff(&old, &new), ["route"]);
    }

    #[test]
    fn restart_only_matches_whole_key_segments() {
        assert!(restart_only("server.listen"));
        assert!(restart_only("store.url"));
        assert!(restart_only("server.tls.cert"));
        assert!(!restart_only("server.listener_note"));
        assert!(!restart_only("route[0].upstream"));
        assert!(!restart_only("session.keys"));
        assert!(restart_only("audit.destination"));
        assert!(restart_only("traces.sample_ratio"));
        assert!(!restart_only("auditing"));
    }

    #[test]
    fn only_identical_providers_are_kept() {
        let old = table("[[provider]]\nname = \"a\"\nissuer = \"x\"\n[[provider]]\nname = \"b\"\nissuer = \"y\"\n");
        let new = table("[[provider]]\nname = \"a\"\nissuer = \"x\"\n[[provider]]\nname = \"b\"\nissuer = \"z\"\n");
        assert_eq!(unchanged_providers(&old, &new), ["a"]);
        let moved = table("[server]\npublic_url = \"https://new\"\n[[provider]]\nname = \"a\"\nissuer = \"x\"\n");
        assert!(unchanged_providers(&old, &moved).is_empty());
    }
}
