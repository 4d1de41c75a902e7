//! `[admin]`: the operators' HTTP API (list and revoke sessions), off by
//! default. It ends anyone's access, so it is served only on its own
//! listener and only with a long bearer credential.

use std::net::SocketAddr;

use serde::Deserialize;

use super::issues::{Issues, KeyPath, Seg};
use super::units::{SecretSource, MIN_SECRET_LEN};
use super::Config;
use Seg::Key;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin API listens (e.g. "127.0.0.1:9091"); unset, it is
    /// off. Never on the main listener.
    pub listen: Option<SocketAddr>,
    /// The bearer credential callers present (e.g.
    /// `{ env = "DOORWARD_ADMIN_TOKEN" }` or `{ file = "..." }`).
    pub token: Option<SecretSource>,
}

/// Checks on `[admin]` past its types: a listener needs a credential that
/// resolves and is long enough not to be guessed, and its own address.
pub(super) fn check(config: &Config, issues: &mut Issues) {
    let admin = &config.admin;
    let at = |key: &'static str| KeyPath::of(&[Key("admin"), Key(key)]);
    let Some(listen) = admin.listen else {
        if admin.token.is_some() {
            issues.push((
                at("token"),
                "a token without `listen` does nothing: the admin API is off".into(),
            ));
        }
        return;
    };
    if config.providers.is_empty() {
        issues.push((
            at("listen"),
            "the admin API ends sessions, and there are none without a [[provider]]".into(),
        ));
    }
    let others = [
        Some(config.server.listen),
        config.server.metrics_listen,
        config.scim.listen.filter(|_| config.scim.enabled),
    ];
    if others.contains(&Some(listen)) {
        issues.push((
            at("listen"),
            "listen must differ from the main, metrics and SCIM listeners".into(),
        ));
    }
    match &admin.token {
        None => issues.push((
            at("token"),
            "set token (e.g. { env = \"DOORWARD_ADMIN_TOKEN\" }): the admin API is never open without a credential"
                .into(),
        )),
        Some(source) => match source.resolve() {
            Err(e) => issues.push((at("token"), e.to_string())),
            Ok(secret) if secret.expose().len() < MIN_SECRET_LEN => issues.push((
                at("token"),
                format!(
                    "the admin token needs at least {MIN_SECRET_LEN} bytes, this one has {} (make one with \
                     `doorward keygen`)",
                    secret.expose().len()
                ),
            )),
            Ok(_) => {}
        },
    }
}

#[cfg(test)]
mod tests {

    use crate::config::load::{has_problem as has, problems_with as problems};

    #[test]
    fn the_admin_api_is_off_by_default_and_fine_with_a_long_token() {
        assert_eq!(problems(""), Vec::<String>::new());
        let long = "[admin]\nlisten = \"127.0.0.1:9091\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n";
        assert_eq!(problems(long), Vec::<String>::new());
    }

    #[test]
    fn a_listener_without_a_long_token_of_its_own_is_refused() {
        let p = problems("[admin]\nlisten = \"127.0.0.1:9091\"\n");
        assert!(has(&p, "admin.token: set token"), "{p:?}");
        let p = problems("[admin]\nlisten = \"127.0.0.1:9091\"\ntoken = \"short\"\n");
        assert!(has(&p, "admin.token: the admin token needs at least 32 bytes"), "{p:?}");
        let p = problems("[admin]\nlisten = \"127.0.0.1:9091\"\ntoken = { env = \"DOORWARD_TEST_UNSET_ADMIN\" }\n");
        assert!(has(&p, "admin.token: "), "{p:?}");
        let p = problems("[admin]\nlisten = \"127.0.0.1:4180\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n");
        assert!(has(&p, "admin.listen: listen must differ"), "{p:?}");
        let p = problems("[admin]\ntoken = \"0123456789abcdef0123456789abcdef\"\n");
        assert!(has(&p, "admin.token: a token without `listen` does nothing"), "{p:?}");
    }
}
