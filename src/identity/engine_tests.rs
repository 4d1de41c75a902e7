//! Table-driven scenarios from the systems doorward replaces (ToolJet,
//! Infisical, Coder group/role/org sync), plus the edges they miss.

use serde_json::{json, Value};

use super::*;

fn policy(toml_text: &str) -> Policy {
    let config: IdentityConfig = toml::from_str(toml_text).expect("identity TOML");
    Policy::compile(&config).expect("compiles")
}

fn claims(v: Value) -> Claims {
    v.as_object().cloned().unwrap_or_default()
}

fn run(toml_text: &str, c: Value) -> Outcome {
    policy(toml_text).compute(&claims(c), true)
}

#[test]
fn scenarios() {
    struct Case {
        name: &'static str,
        config: &'static str,
        claims: Value,
        groups: &'static [&'static str],
        roles: &'static [&'static str],
        orgs: &'static [&'static str],
        allowed: bool,
    }
    let cases = [
        Case {
            name: "groups pass through by default",
            config: "",
            claims: json!({"sub": "u", "groups": ["engineers", "staff"]}),
            groups: &["engineers", "staff"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "a mapped group (engineers -> developers), 1:N",
            config: "[groups]\nmapping = { engineers = [\"developers\", \"staff\"] }",
            claims: json!({"sub": "u", "groups": ["engineers", "other"]}),
            groups: &["developers", "staff", "other"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "passthrough off keeps only mapped groups",
            config: "[groups]\npassthrough = false\nmapping = { \"Marketing Team\" = \"marketing\" }",
            claims: json!({"sub": "u", "groups": ["Marketing Team", "random"]}),
            groups: &["marketing"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "role-named groups become roles; admin plus a custom group",
            config: "[roles]\nfrom_groups = [\"admin\", \"builder\", \"end-user\"]",
            claims: json!({"sub": "u", "groups": ["admin", "custom-team"]}),
            groups: &["admin", "custom-team"],
            roles: &["admin"],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "a user with no group gets the default group and role",
            config: "[groups]\ndefault = [\"end-users\"]\n[roles]\ndefault = \"end-user\"",
            claims: json!({"sub": "u"}),
            groups: &["end-users"],
            roles: &["end-user"],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "regex applies after mapping, to the mapped names",
            config: "[groups]\nmapping = { \"eng\" = \"developers\" }\nregex_filter = \"^(developers|staff)$\"",
            claims: json!({"sub": "u", "groups": ["eng", "staff", "eng-leads"]}),
            groups: &["developers", "staff"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "allowlist keeps only listed app groups",
            config: "[groups]\nallowlist = [\"staff\"]",
            claims: json!({"sub": "u", "groups": ["staff", "secret-project"]}),
            groups: &["staff"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "login allowlist denies a user without an allowed group",
            config: "[login]\nallowed_groups = [\"staff\"]",
            claims: json!({"sub": "u", "groups": ["contractors"]}),
            groups: &["contractors"],
            roles: &[],
            orgs: &[],
            allowed: false,
        },
        Case {
            name: "login allowlist: an allowed email domain is another way in",
            config: "[login]\nallowed_groups = [\"staff\"]\nallowed_email_domains = [\"example.com\"]",
            claims: json!({"sub": "u", "email": "a@EXAMPLE.com", "groups": []}),
            groups: &[],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "strict email parsing: a@example.com@evil.com is in no domain",
            config: "[login]\nallowed_email_domains = [\"example.com\"]",
            claims: json!({"sub": "u", "email": "a@example.com@evil.com"}),
            groups: &[],
            roles: &[],
            orgs: &[],
            allowed: false,
        },
        Case {
            name: "missing claim means no groups",
            config: "[groups]\nclaim = \"memberOf\"",
            claims: json!({"sub": "u", "groups": ["ignored"]}),
            groups: &[],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "nested (Keycloak) and quoted claim paths",
            config: "[groups]\nclaim = \"realm_access.roles\"\n[roles]\nclaim = 'resource_access.\"my-app\".roles'",
            claims: json!({"sub": "u", "realm_access": {"roles": ["g1", "g2"]},
                           "resource_access": {"my-app": {"roles": ["editor"]}}}),
            groups: &["g1", "g2"],
            roles: &["editor"],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "URL-named claim (Auth0 style)",
            config: "[groups]\nclaim = \"https://example.com/groups\"",
            claims: json!({"sub": "u", "https://example.com/groups": ["a"]}),
            groups: &["a"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "a delimited string claim",
            config: "[groups]\ndelimiter = \",\"",
            claims: json!({"sub": "u", "groups": "a, b,c"}),
            groups: &["a", "b", "c"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "names with commas, quotes and non-ASCII letters survive",
            config: "",
            claims: json!({"sub": "u", "groups": ["R&D, Europe", "say \"hi\"", "Ärzte", "日本"]}),
            groups: &["R&D, Europe", "say \"hi\"", "Ärzte", "日本"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "case-insensitive mapping",
            config: "[groups]\ncase_insensitive = true\nmapping = { \"Engineers\" = \"dev\" }",
            claims: json!({"sub": "u", "groups": ["ENGINEERS"]}),
            groups: &["dev"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "role claim with a 1:N mapping (Coder TemplateAuthor)",
            config: "[roles]\nmapping = { TemplateAuthor = [\"template-admin\", \"user-admin\"] }",
            claims: json!({"sub": "u", "roles": ["TemplateAuthor"]}),
            groups: &[],
            roles: &["template-admin", "user-admin"],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "organizations: mapped, plus the default every user gets",
            config: "[orgs]\nclaim = \"organizations\"\npassthrough = false\nmapping = { product = \"product-org\" }\ndefault = \"main\"",
            claims: json!({"sub": "u", "organizations": ["product", "unknown"]}),
            groups: &[],
            roles: &[],
            orgs: &["product-org", "main"],
            allowed: true,
        },
        Case {
            name: "a part switched off emits nothing but keeps its settings",
            config: "[groups]\nenabled = false\nmapping = { a = \"b\" }",
            claims: json!({"sub": "u", "groups": ["a"]}),
            groups: &[],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
        Case {
            name: "every value of a multi-valued claim is used, duplicates once",
            config: "[groups]\nmapping = { a = \"x\", b = \"x\" }",
            claims: json!({"sub": "u", "groups": ["a", "b", "c"]}),
            groups: &["x", "c"],
            roles: &[],
            orgs: &[],
            allowed: true,
        },
    ];
    for case in cases {
        let out = run(case.config, case.claims);
        assert_eq!(out.identity.groups, case.groups, "{}: groups", case.name);
        assert_eq!(out.identity.roles, case.roles, "{}: roles", case.name);
        assert_eq!(out.identity.orgs, case.orgs, "{}: orgs", case.name);
        assert_eq!(out.login.allowed, case.allowed, "{}: login", case.name);
    }
}

#[test]
fn membership_removed_at_the_idp_disappears_on_recompute() {
    let p = policy("[groups]\nmapping = { engineers = \"developers\" }");
    let before = p.compute(&claims(json!({"sub": "u", "groups": ["engineers", "admins"]})), false);
    assert_eq!(before.identity.groups, ["developers", "admins"]);
    let after = p.compute(&claims(json!({"sub": "u", "groups": ["engineers"]})), false);
    assert_eq!(after.identity.groups, ["developers"]);
}

#[test]
fn rank_picks_the_highest_role() {
    let out = run(
        "[roles]\nfrom_groups = [\"admin\", \"builder\"]\nrank = [\"admin\", \"builder\", \"end-user\"]",
        json!({"sub": "u", "groups": ["builder", "admin"]}),
    );
    assert_eq!(out.identity.role.as_deref(), Some("admin"));
    let out = run("[roles]\nrank = [\"admin\"]", json!({"sub": "u"}));
    assert_eq!(out.identity.role, None);
}

#[test]
fn overage_is_detected_from_distributed_claims() {
    let c = json!({"sub": "u", "_claim_names": {"groups": "src1"},
                   "_claim_sources": {"src1": {"endpoint": "https://graph.example/getMemberObjects"}}});
    let out = run("[groups]\noverage = true", c.clone());
    let overage = out.overage.expect("overage");
    assert_eq!(
        overage.endpoint.as_deref(),
        Some("https://graph.example/getMemberObjects")
    );
    assert!(overage.fetch);
    assert!(out.identity.groups.is_empty());
    assert!(!run("", c).overage.expect("still detected").fetch);
    assert!(run("", json!({"sub": "u", "groups": []})).overage.is_none());
}

#[test]
fn reasons_say_which_rule_produced_or_dropped_each_value() {
    let out = run(
        "[groups]\nmapping = { eng = \"developers\" }\nregex_filter = \"^dev\"\ndefault = [\"none\"]\n[roles]\nfrom_groups = [\"developers\"]",
        json!({"sub": "u", "groups": ["eng", "ops"]}),
    );
    let find = |value: &str, action: Action| {
        out.reasons
            .iter()
            .find(|r| r.value == value && r.action == action)
            .map(|r| r.rule.clone())
    };
    assert_eq!(
        find("developers", Action::Kept).as_deref(),
        Some("mapping: `eng` -> `developers`")
    );
    assert!(find("ops", Action::Dropped).is_some_and(|r| r.contains("regex_filter")));
    assert!(find("developers", Action::Added).is_some_and(|r| r.contains("from_groups")));
    // Without explain, nothing is recorded (the login path stays cheap).
    let quiet = policy("").compute(&claims(json!({"sub": "u", "groups": ["a"]})), false);
    assert!(quiet.reasons.is_empty());
}

#[test]
fn route_overrides_replace_only_what_they_set() {
    let global: IdentityConfig =
        toml::from_str("[groups]\nmapping = { engineers = \"developers\" }\ndefault = [\"end-users\"]").expect("toml");
    let route: IdentityConfig = toml::from_str("[groups]\nmapping = { engineers = \"Editor\" }").expect("toml");
    let merged = Policy::compile(&global.overlay(&route)).expect("compiles");
    let out = merged.compute(&claims(json!({"sub": "u", "groups": ["engineers"]})), false);
    assert_eq!(out.identity.groups, ["Editor"]);
    let out = merged.compute(&claims(json!({"sub": "u"})), false);
    assert_eq!(
        out.identity.groups,
        ["end-users"],
        "default inherited from the global settings"
    );
}

#[test]
fn bad_settings_name_their_key() {
    let config: IdentityConfig = toml::from_str("[groups]\nregex_filter = \"(\"\nclaim = \"a..b\"").expect("toml");
    let problems = Policy::compile(&config).expect_err("invalid");
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"groups.regex_filter") && keys.contains(&"groups.claim"),
        "{problems:?}"
    );
}

#[test]
fn user_comes_from_the_configured_claim_then_fallbacks() {
    let out = run(
        "user_claim = \"upn\"",
        json!({"sub": "s", "upn": "u@corp", "email": "e@x"}),
    );
    assert_eq!(out.identity.user, "u@corp");
    let out = run("user_claim = \"upn\"", json!({"sub": "s", "email": "e@x"}));
    assert_eq!(out.identity.user, "e@x");
}
