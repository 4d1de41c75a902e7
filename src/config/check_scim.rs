//! Checks on `[scim]` past its types. Whoever holds a SCIM credential can
//! create users, give them roles and end anyone's sessions, so an enabled
//! server must have a credential, and every credential must resolve and be
//! long enough not to be guessed.

use super::issues::{Issues, KeyPath, Seg};
use super::units::MIN_SECRET_LEN;
use super::Config;
use crate::paths::{normalize, EscapedSlashes};
use Seg::Key;

pub(super) fn check(config: &Config, issues: &mut Issues) {
    let scim = &config.scim;
    if !scim.enabled {
        return;
    }
    let at = |key: &'static str| KeyPath::of(&[Key("scim"), Key(key)]);
    if config.providers.is_empty() {
        issues.push((
            at("enabled"),
            "SCIM needs a [[provider]]: the directory changes the sessions and identities of users who log in \
             through one (and lives in their store)"
                .into(),
        ));
    }
    check_binding(config, issues);
    let basic = scim.basic_user.is_some() || scim.basic_password.is_some();
    if scim.bearer_token.is_none() && !basic {
        issues.push((
            at("enabled"),
            "set bearer_token (or basic_user and basic_password): SCIM is never open without a credential".into(),
        ));
    }
    if basic && (scim.basic_user.is_none() || scim.basic_password.is_none()) {
        issues.push((at("basic_user"), "basic_user and basic_password go together".into()));
    }
    if scim
        .basic_user
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.contains(':'))
    {
        issues.push((at("basic_user"), "a Basic user name is not empty and has no `:`".into()));
    }
    for (key, source) in [
        ("bearer_token", &scim.bearer_token),
        ("basic_password", &scim.basic_password),
    ] {
        let Some(source) = source else { continue };
        match source.resolve() {
            Err(e) => issues.push((at(key), e.to_string())),
            Ok(secret) if secret.expose().len() < MIN_SECRET_LEN => issues.push((
                at(key),
                format!(
                    "a SCIM secret needs at least {MIN_SECRET_LEN} bytes, this one has {} (make one with \
                     `doorward keygen`)",
                    secret.expose().len()
                ),
            )),
            Ok(_) => {}
        }
    }
    let path = &scim.base_path;
    let normal = normalize(path, EscapedSlashes::Reject).is_ok_and(|n| n == path.as_str());
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || !normal {
        issues.push((
            at("base_path"),
            format!("`{path}` must be a normalised absolute path without a trailing `/` (e.g. \"/scim/v2\")"),
        ));
    }
    if let Some(listen) = scim.listen {
        if listen == config.server.listen || Some(listen) == config.server.metrics_listen {
            issues.push((
                at("listen"),
                "listen must differ from the main and metrics listeners".into(),
            ));
        }
    }
    if scim.max_page_size == 0 {
        issues.push((at("max_page_size"), "max_page_size must be at least 1".into()));
    }
    if scim.max_body.0 < 1024 {
        issues.push((at("max_body"), "max_body must be at least 1KiB".into()));
    }
}

/// The directory describes the users of one provider: the same email
/// through another provider is another person, so with several providers
/// the operator must say which one (a guess would hand one IdP's users the
/// directory roles of another's).
fn check_binding(config: &Config, issues: &mut Issues) {
    let names: Vec<&str> = config.providers.iter().map(|p| p.name()).collect();
    // A missing key is placed at its table, `[scim]`.
    let at = KeyPath::of(&[Key("scim"), Key("provider")]);
    match &config.scim.provider {
        Some(name) if !names.contains(&name.as_str()) => issues.push((
            at,
            format!(
                "`{name}` is not a configured [[provider]] (configured: {})",
                names.join(", ")
            ),
        )),
        None if names.len() > 1 => issues.push((
            at,
            format!(
                "with several providers, set provider: the [[provider]] whose users the directory describes \
                 (one of {})",
                names.join(", ")
            ),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_str, ConfigError};

    const BASE: &str = "[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n";
    const PROVIDER: &str = "[server]\npublic_url = \"http://127.0.0.1:4180\"\n[session]\nkeys = [\"k0123456789abcdef0123456789abcdef\"]\n\
        [[provider]]\nname = \"idp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";

    fn problems(extra: &str) -> Vec<String> {
        crate::config::load::problems_in(&format!("{PROVIDER}{BASE}{extra}"))
    }

    #[test]
    fn an_enabled_server_needs_a_long_enough_credential() {
        let p = problems("[scim]\nenabled = true\n");
        assert!(
            p.iter().any(|m| m.starts_with("scim.enabled: set bearer_token")),
            "{p:?}"
        );
        let p = problems("[scim]\nenabled = true\nbearer_token = \"short\"\n");
        assert!(
            p.iter()
                .any(|m| m.starts_with("scim.bearer_token: a SCIM secret needs")),
            "{p:?}"
        );
        let p = problems("[scim]\nenabled = true\nbearer_token = { env = \"DOORWARD_TEST_UNSET_SCIM\" }\n");
        assert!(
            p.iter()
                .any(|m| m.starts_with("scim.bearer_token: environment variable")),
            "{p:?}"
        );
        let p = problems("[scim]\nenabled = true\nbasic_user = \"okta\"\n");
        assert!(
            p.iter()
                .any(|m| m.starts_with("scim.basic_user: basic_user and basic_password")),
            "{p:?}"
        );
        assert!(problems(&format!(
            "[scim]\nenabled = true\nbearer_token = \"{}\"\n",
            "t".repeat(32)
        ))
        .is_empty());
        assert!(
            problems("[scim]\nenabled = false\n").is_empty(),
            "off: nothing to check"
        );
    }

    #[test]
    fn base_path_and_listener_are_checked() {
        let token = format!("bearer_token = \"{}\"\n", "t".repeat(32));
        for bad in ["scim", "/scim/", "/a/../b", "/"] {
            let p = problems(&format!("[scim]\nenabled = true\n{token}base_path = \"{bad}\"\n"));
            assert!(p.iter().any(|m| m.starts_with("scim.base_path")), "{bad}: {p:?}");
        }
        let p = problems(&format!("[scim]\nenabled = true\n{token}listen = \"127.0.0.1:4180\"\n"));
        assert!(p.iter().any(|m| m.starts_with("scim.listen")), "{p:?}");
    }

    #[test]
    fn scim_without_a_provider_is_refused() {
        let text = format!("{BASE}[scim]\nenabled = true\nbearer_token = \"{}\"\n", "t".repeat(32));
        let Err(ConfigError::Invalid(p)) = parse_str(&text, "doorward.toml") else {
            panic!("accepted")
        };
        assert!(
            p.iter().any(|p| p.message.starts_with("SCIM needs a [[provider]]")),
            "{p:?}"
        );
    }

    #[test]
    fn the_directory_is_bound_to_one_configured_provider() {
        let token = format!("bearer_token = \"{}\"\n", "t".repeat(32));
        let second = "[[provider]]\nname = \"other\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:8/\"\n\
            client_id = \"c\"\nclient_secret = \"s\"\n";
        // One provider: the directory is bound to it without saying so.
        let text = format!("{PROVIDER}{BASE}[scim]\nenabled = true\n{token}");
        let config = parse_str(&text, "doorward.toml").expect("one provider needs no binding");
        assert_eq!(config.scim.bound_provider(&["idp"]), Some("idp"));
        // Two: the operator must say which, and the problem is placed at [scim].
        let text = format!("{PROVIDER}{second}{BASE}[scim]\nenabled = true\n{token}");
        let Err(ConfigError::Invalid(p)) = parse_str(&text, "doorward.toml") else {
            panic!("accepted an unbound directory with two providers")
        };
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].key.as_str(), p[0].line), ("scim.provider", 20), "{p:?}");
        assert!(
            p[0].message.starts_with("with several providers, set provider"),
            "{p:?}"
        );
        // A name that is not a provider is refused at the key itself.
        let text = format!("{PROVIDER}{second}{BASE}[scim]\nenabled = true\n{token}provider = \"nope\"\n");
        let Err(ConfigError::Invalid(p)) = parse_str(&text, "doorward.toml") else {
            panic!("accepted an unknown provider")
        };
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].key.as_str(), p[0].line), ("scim.provider", 23), "{p:?}");
        assert_eq!(
            p[0].message,
            "`nope` is not a configured [[provider]] (configured: idp, other)"
        );
        let text = format!("{PROVIDER}{second}{BASE}[scim]\nenabled = true\n{token}provider = \"other\"\n");
        let config = parse_str(&text, "doorward.toml").expect("a named provider binds");
        assert_eq!(config.scim.bound_provider(&["idp", "other"]), Some("other"));
        assert_eq!(
            config.scim.bound_provider(&["idp"]),
            None,
            "a binding never falls back to another provider"
        );
    }

    #[test]
    fn off_binds_nothing() {
        let config = parse_str(&format!("{PROVIDER}{BASE}"), "doorward.toml").expect("valid");
        assert_eq!(config.scim.bound_provider(&["idp"]), None);
    }
}
