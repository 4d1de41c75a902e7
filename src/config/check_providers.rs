//! Checks on `[[provider]]` tables past their types: the keys every kind
//! shares (a unique name), then each kind's own. Like all validation they
//! only read (a key or metadata file's existence).

use std::collections::HashSet;

use super::issues::{absolute_http_url, is_loopback, Issues, KeyPath, Seg};
use super::provider::{ClientAuth, OidcProviderConfig, ProviderConfig, SamlProviderConfig};
use super::Config;
use Seg::{Index, Key};

/// Signature algorithms openidconnect can verify; `none` is never one.
const KNOWN_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
];

pub(super) fn check(config: &Config, issues: &mut Issues) {
    let mut names = HashSet::new();
    for (i, provider) in config.providers.iter().enumerate() {
        let at = |key: &'static str| KeyPath::of(&[Key("provider"), Index(i), Key(key)]);
        let name = provider.name();
        if name.trim().is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            issues.push((
                at("name"),
                format!("`{name}`: a provider name is letters, digits, `-` and `_`"),
            ));
        } else if !names.insert(name) {
            issues.push((at("name"), format!("provider name `{name}` is used twice")));
        }
        match provider {
            ProviderConfig::Oidc(oidc) => check_oidc(oidc, i, issues),
            ProviderConfig::Saml(saml) => check_saml(saml, i, issues),
        }
    }
}

/// The switches a provider has on that weaken a default, with why each
/// matters.
pub(super) fn weakened(provider: &ProviderConfig) -> Vec<(&'static str, &'static str)> {
    let switches: Vec<(bool, &'static str, &'static str)> = match provider {
        ProviderConfig::Oidc(p) => vec![
            (
                p.insecure_allow_unverified_email,
                "insecure_allow_unverified_email",
                "logins with an unverified email address are accepted",
            ),
            (
                p.insecure_accept_id_token_as_bearer,
                "insecure_accept_id_token_as_bearer",
                "ID tokens are accepted as bearer tokens",
            ),
            (
                p.insecure_allow_http_issuer,
                "insecure_allow_http_issuer",
                "the issuer is reached over plain http",
            ),
            (
                p.insecure_allow_hmac,
                "insecure_allow_hmac",
                "HMAC-signed ID tokens (signed with the client secret) are accepted",
            ),
        ],
        ProviderConfig::Saml(p) => vec![(
            p.insecure_allow_sha1,
            "insecure_allow_sha1",
            "SHA-1 signatures on SAML messages are accepted",
        )],
    };
    switches
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, key, why)| (key, why))
        .collect()
}

fn readable(path: &std::path::Path, at: KeyPath, issues: &mut Issues) {
    if let Err(e) = std::fs::metadata(path) {
        issues.push((at, format!("cannot read {}: {e}", path.display())));
    }
}

fn check_oidc(provider: &OidcProviderConfig, i: usize, issues: &mut Issues) {
    let at = |key: &'static str| KeyPath::of(&[Key("provider"), Index(i), Key(key)]);
    for (j, host) in provider.claim_source_hosts.iter().enumerate() {
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            issues.push((
                KeyPath::of(&[Key("provider"), Index(i), Key("claim_source_hosts"), Index(j)]),
                format!("`{host}` is not a host name"),
            ));
        }
    }
    match absolute_http_url(&provider.issuer) {
        Err(why) => issues.push((at("issuer"), why)),
        Ok(uri)
            if uri.scheme_str() == Some("http")
                && !is_loopback(uri.host().unwrap_or_default())
                && !provider.insecure_allow_http_issuer =>
        {
            issues.push((
                at("issuer"),
                format!(
                    "`{}`: an issuer must use https (plain http is accepted on loopback, or with \
                     insecure_allow_http_issuer = true)",
                    provider.issuer
                ),
            ))
        }
        Ok(_) => {}
    }
    if provider.client_id.trim().is_empty() {
        issues.push((at("client_id"), "a client_id is required".into()));
    }
    if let Some(secret) = &provider.client_secret {
        if let Err(e) = secret.resolve() {
            issues.push((at("client_secret"), e.to_string()));
        }
    }
    check_client_auth(provider, i, issues);
    if !provider.scopes.iter().any(|s| s == "openid") {
        issues.push((at("scopes"), "scopes must include \"openid\"".into()));
    }
    for (j, alg) in provider.allowed_algs.iter().enumerate() {
        let place = KeyPath::of(&[Key("provider"), Index(i), Key("allowed_algs"), Index(j)]);
        if !KNOWN_ALGS.contains(&alg.as_str()) {
            issues.push((
                place,
                format!(
                    "`{alg}` is not a supported signature algorithm ({})",
                    KNOWN_ALGS.join(", ")
                ),
            ));
        } else if alg.starts_with("HS") && !provider.insecure_allow_hmac {
            issues.push((
                place,
                format!(
                    "`{alg}` tokens are signed with the client secret; allowing them needs insecure_allow_hmac = true"
                ),
            ));
        }
    }
    if provider.allowed_algs.is_empty() {
        issues.push((at("allowed_algs"), "at least one signature algorithm is needed".into()));
    }
    if let Some(path) = &provider.ca_file {
        readable(path, at("ca_file"), issues);
    }
    if provider.metadata_refresh.0.as_secs() == 0 {
        issues.push((at("metadata_refresh"), "must be at least one second".into()));
    }
}

/// `client_auth` and the keys that go with it. (Whether the key file holds
/// a key doorward can sign with, and the certificate a certificate for it,
/// is checked where they are loaded, by the same code `serve` runs.)
fn check_client_auth(provider: &OidcProviderConfig, i: usize, issues: &mut Issues) {
    let at = |key: &'static str| KeyPath::of(&[Key("provider"), Index(i), Key(key)]);
    let key_jwt = provider.client_auth == ClientAuth::PrivateKeyJwt;
    match &provider.client_key {
        Some(path) if key_jwt => readable(path, at("client_key"), issues),
        Some(_) => issues.push((
            at("client_key"),
            "client_key is only used with client_auth = \"private_key_jwt\"".into(),
        )),
        None if key_jwt => issues.push((
            at("client_auth"),
            "client_auth = \"private_key_jwt\" needs client_key (make one with `doorward keygen --client`)".into(),
        )),
        None => {}
    }
    if key_jwt && provider.client_secret.is_some() {
        // A secret that is configured but never sent is one more secret to
        // leak, and usually a sign the switch was half made.
        issues.push((
            at("client_secret"),
            "client_secret is unused with client_auth = \"private_key_jwt\": remove it".into(),
        ));
    }
    match &provider.client_certificate {
        Some(path) if key_jwt => readable(path, at("client_certificate"), issues),
        Some(_) => issues.push((
            at("client_certificate"),
            "client_certificate is only used with client_auth = \"private_key_jwt\"".into(),
        )),
        None => {}
    }
    match &provider.client_key_id {
        Some(_) if !key_jwt => issues.push((
            at("client_key_id"),
            "client_key_id is only used with client_auth = \"private_key_jwt\"".into(),
        )),
        Some(kid) if kid.trim().is_empty() => issues.push((at("client_key_id"), "a key id cannot be empty".into())),
        _ => {}
    }
}

fn check_saml(provider: &SamlProviderConfig, i: usize, issues: &mut Issues) {
    let at = |key: &'static str| KeyPath::of(&[Key("provider"), Index(i), Key(key)]);
    match (&provider.idp_metadata_url, &provider.idp_metadata_file) {
        (None, None) => issues.push((
            KeyPath::of(&[Key("provider"), Index(i)]),
            "a SAML provider needs idp_metadata_url or idp_metadata_file".into(),
        )),
        (Some(_), Some(_)) => issues.push((
            at("idp_metadata_file"),
            "give idp_metadata_url or idp_metadata_file, not both".into(),
        )),
        (Some(url), None) => match absolute_http_url(url) {
            Err(why) => issues.push((at("idp_metadata_url"), why)),
            Ok(uri) if uri.scheme_str() == Some("http") && !is_loopback(uri.host().unwrap_or_default()) => {
                issues.push((
                    at("idp_metadata_url"),
                    format!("`{url}`: metadata (the IdP's keys) must come over https; plain http only on loopback"),
                ))
            }
            Ok(_) => {}
        },
        (None, Some(path)) => readable(path, at("idp_metadata_file"), issues),
    }
    match (&provider.sp_key, &provider.sp_certificate) {
        (Some(key), Some(cert)) => {
            readable(key, at("sp_key"), issues);
            readable(cert, at("sp_certificate"), issues);
        }
        (Some(_), None) => issues.push((at("sp_certificate"), "sp_key needs sp_certificate".into())),
        (None, Some(_)) => issues.push((at("sp_key"), "sp_certificate needs sp_key".into())),
        (None, None) => {}
    }
    if let Some(id) = &provider.sp_entity_id {
        if id.trim().is_empty() {
            issues.push((at("sp_entity_id"), "an entity id cannot be empty".into()));
        }
    }
    if provider.max_response_size.0 < 4096 {
        issues.push((at("max_response_size"), "must be at least 4 KiB".into()));
    }
    if let Some(path) = &provider.ca_file {
        readable(path, at("ca_file"), issues);
    }
}

#[cfg(test)]
mod tests {
    const CONFIG: &str = "[server]\npublic_url = \"http://127.0.0.1:4180\"\n[session]\n\
        keys = [\"k0123456789abcdef0123456789abcdef\"]\n[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n\
        [[provider]]\nname = \"idp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n";

    fn problems(provider: &str) -> Vec<String> {
        crate::config::load::problems_in(&format!("{CONFIG}{provider}"))
    }

    #[test]
    fn private_key_jwt_needs_a_key_and_no_secret() {
        let p = problems("client_auth = \"private_key_jwt\"\n");
        assert_eq!(
            p,
            ["provider[0].client_auth: client_auth = \"private_key_jwt\" needs client_key (make one with `doorward keygen --client`)"]
        );
        let p = problems(
            "client_auth = \"private_key_jwt\"\nclient_key = \"/nonexistent/client.pem\"\nclient_secret = \"s\"\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("provider[0].client_key: cannot read /nonexistent/client.pem"),
            "{p:?}"
        );
        assert_eq!(
            p[1],
            "provider[0].client_secret: client_secret is unused with client_auth = \"private_key_jwt\": remove it"
        );
    }

    #[test]
    fn a_client_certificate_must_be_readable() {
        let dir = tempfile::tempdir().expect("dir");
        let key = dir.path().join("client.pem");
        std::fs::write(&key, "checked where it is loaded").expect("write");
        let base = format!(
            "client_auth = \"private_key_jwt\"\nclient_key = \"{}\"\n",
            key.display()
        );
        let p = problems(&format!("{base}client_certificate = \"/nonexistent/client.crt\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("provider[0].client_certificate: cannot read /nonexistent/client.crt"),
            "{p:?}"
        );
        let p = problems(&format!("{base}client_certificate = \"{}\"\n", key.display()));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn key_settings_without_private_key_jwt_are_refused_and_par_is_typed() {
        let p = problems(
            "client_secret = \"s\"\nclient_key = \"/k.pem\"\nclient_certificate = \"/k.crt\"\nclient_key_id = \"k1\"\n",
        );
        assert_eq!(
            p,
            [
                "provider[0].client_key: client_key is only used with client_auth = \"private_key_jwt\"",
                "provider[0].client_certificate: client_certificate is only used with client_auth = \"private_key_jwt\"",
                "provider[0].client_key_id: client_key_id is only used with client_auth = \"private_key_jwt\"",
            ]
        );
        assert!(problems("client_secret = \"s\"\npar = \"always\"\n").is_empty());
        let p = problems("client_secret = \"s\"\npar = \"sometimes\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("unknown variant `sometimes`"), "{p:?}");
    }
}
