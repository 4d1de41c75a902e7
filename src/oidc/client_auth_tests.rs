//! The client assertion's claims and signature, what each client auth
//! method adds to a token request, and when PAR is used. (Against a real
//! provider: tests/e2e/client_auth.rs.)

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKey;
use serde_json::{json, Value};

use super::choose_par;
use crate::assertion::client_certificate::ClientCertificate;
use crate::assertion::client_key::{ClientKey, ClientKeyAlg};
use crate::clock::Clock;
use crate::config::{OidcProviderConfig, ParMode};
use crate::idp_http::IdpHttp;
use crate::oidc::{Metadata, OidcError, OidcProvider};

const ISSUER: &str = "https://idp.test";
const NOW: i64 = 1_900_000_000;

fn provider(extra: &str) -> Result<OidcProvider, OidcError> {
    let config: OidcProviderConfig = toml::from_str(&format!(
        "name = 't'\nissuer = '{ISSUER}'\nclient_id = 'doorward-client'\n{extra}"
    ))
    .expect("provider config");
    let tls = crate::tls::client_config(None).expect("tls");
    OidcProvider::new(&config, IdpHttp::new(tls, Duration::from_secs(1)), Clock::manual(NOW))
}

fn metadata() -> Metadata {
    serde_json::from_value(json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/oauth/token"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .expect("metadata")
}

/// A key written to a temporary file, as `client_key` names one.
fn key_file(alg: ClientKeyAlg) -> (tempfile::TempDir, std::path::PathBuf, ClientKey) {
    let dir = tempfile::tempdir().expect("dir");
    let key = ClientKey::generate(alg).expect("key");
    let path = dir.path().join("client.pem");
    std::fs::write(&path, key.to_pem().expect("pem")).expect("write");
    (dir, path, key)
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

#[test]
fn the_assertion_names_the_client_the_token_endpoint_and_a_fresh_jti() {
    for alg in [ClientKeyAlg::Es256, ClientKeyAlg::Rs256, ClientKeyAlg::EdDsa] {
        let (_dir, path, key) = key_file(alg);
        let provider = provider(&format!(
            "client_auth = 'private_key_jwt'\nclient_key = '{}'\n",
            path.display()
        ))
        .expect("provider");
        let params = provider.token_auth_params(&metadata()).expect("params");
        assert_eq!(
            params[0],
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()
            )
        );
        assert_eq!(params[1].0, "client_assertion");
        let token = &params[1].1;
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(
            header["kid"],
            key.thumbprint(),
            "unset client_key_id: the thumbprint keygen prints"
        );
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "doorward-client");
        assert_eq!(claims["sub"], "doorward-client");
        assert_eq!(claims["aud"], format!("{ISSUER}/oauth/token"));
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 60);
        let jti = claims["jti"].as_str().expect("jti");
        assert!(jti.len() >= 32, "{jti}");

        // Signed by the configured key: its public JWK verifies it.
        let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk("x")).expect("jwk");
        let signing_alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(Value::String(alg.as_str().into())).expect("alg");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        jwk.verify_signature(
            &signing_alg,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &signature,
        )
        .expect("verifies");

        // Every request gets its own assertion: IdPs refuse a replayed jti.
        let again = provider.token_auth_params(&metadata()).expect("params");
        let again = decode(again[1].1.split('.').nth(1).expect("payload"));
        assert_ne!(again["jti"], claims["jti"]);
    }
}

#[test]
fn a_configured_key_id_is_the_kid_and_secret_methods_add_nothing() {
    let (_dir, path, _key) = key_file(ClientKeyAlg::Es256);
    let provider = provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\nclient_key_id = 'okta-key-1'\n",
        path.display()
    ))
    .expect("provider");
    let assertion = provider
        .client_assertion("https://idp.test/oauth/token")
        .expect("assertion");
    assert_eq!(
        decode(assertion.split('.').next().expect("header"))["kid"],
        "okta-key-1"
    );

    for method in ["client_secret_basic", "client_secret_post"] {
        let provider = provider_with_secret(method);
        assert!(provider.token_auth_params(&metadata()).expect("params").is_empty());
        assert!(matches!(provider.client_assertion("aud"), Err(OidcError::Config(_))));
    }
}

fn provider_with_secret(method: &str) -> OidcProvider {
    provider(&format!("client_secret = 's'\nclient_auth = '{method}'\n")).expect("provider")
}

#[test]
fn a_missing_or_unusable_key_stops_the_provider_with_the_path_named() {
    let missing = provider("client_auth = 'private_key_jwt'\n");
    assert!(matches!(missing, Err(OidcError::Config(m)) if m.contains("needs client_key")));

    let unreadable = provider("client_auth = 'private_key_jwt'\nclient_key = '/nonexistent/client.pem'\n");
    assert!(matches!(unreadable, Err(OidcError::Config(m)) if m.contains("/nonexistent/client.pem")));

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").expect("write");
    let not_a_key = provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\n",
        path.display()
    ));
    assert!(
        matches!(&not_a_key, Err(OidcError::Config(m)) if m.contains("cert.pem is not an RSA")),
        "{:?}",
        not_a_key.err()
    );
}

#[test]
fn par_follows_the_setting_and_what_the_provider_advertises_or_requires() {
    let ep = Some("https://idp.test/par");
    let cases = [
        // (mode, endpoint, required) -> pushed?
        (ParMode::Auto, ep, false, Ok(true)),
        (ParMode::Auto, None, false, Ok(false)),
        (ParMode::Always, ep, false, Ok(true)),
        (ParMode::Always, None, false, Err(())),
        (ParMode::Never, ep, false, Ok(false)),
        (ParMode::Never, None, false, Ok(false)),
        // A provider that requires PAR gets it, even with "never".
        (ParMode::Never, ep, true, Ok(true)),
        (ParMode::Auto, ep, true, Ok(true)),
        (ParMode::Auto, None, true, Err(())),
        (ParMode::Never, None, true, Err(())),
    ];
    for (mode, endpoint, required, expected) in cases {
        let chosen = choose_par(mode, endpoint, required);
        match (chosen, expected) {
            (Ok(got), Ok(pushed)) => {
                assert_eq!(got.is_some(), pushed, "{mode:?} {endpoint:?} {required}");
                if pushed {
                    assert_eq!(got, ep);
                }
            }
            (Err(OidcError::ParUnavailable), Err(())) => {}
            (got, _) => panic!("{mode:?} {endpoint:?} {required}: {got:?}"),
        }
    }
}

/// The pushed request's form, as the IdP would read it.
fn pushed(provider: &OidcProvider) -> (Option<String>, Vec<(String, String)>) {
    let url = url::Url::parse(&format!(
        "{ISSUER}/auth?response_type=code&client_id=doorward-client&state=s1&code_challenge=c1&scope=openid+email"
    ))
    .expect("url");
    let request = provider
        .par_request(&metadata(), &format!("{ISSUER}/par"), &url)
        .expect("request");
    assert_eq!(request.uri().to_string(), format!("{ISSUER}/par"));
    let basic = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let form = form_urlencoded::parse(request.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (basic, form)
}

fn names(form: &[(String, String)]) -> Vec<&str> {
    form.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn the_pushed_request_carries_every_parameter_and_the_clients_own_authentication() {
    let (basic, form) = pushed(&provider_with_secret("client_secret_basic"));
    assert_eq!(
        basic.as_deref(),
        Some("Basic ZG9vcndhcmQtY2xpZW50OnM="),
        "doorward-client:s"
    );
    assert_eq!(
        names(&form),
        ["response_type", "state", "code_challenge", "scope", "client_id"],
        "client_id once, the secret only in the header"
    );
    assert!(form.contains(&("scope".into(), "openid email".into())));

    let (basic, form) = pushed(&provider_with_secret("client_secret_post"));
    assert_eq!(basic, None);
    assert!(form.contains(&("client_secret".into(), "s".into())));

    let (_dir, path, _key) = key_file(ClientKeyAlg::EdDsa);
    let provider = provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\n",
        path.display()
    ))
    .expect("provider");
    let (basic, form) = pushed(&provider);
    assert_eq!(basic, None);
    assert!(!names(&form).contains(&"client_secret"));
    let assertion = &form.iter().find(|(k, _)| k == "client_assertion").expect("assertion").1;
    assert_eq!(
        decode(assertion.split('.').nth(1).expect("payload"))["aud"],
        format!("{ISSUER}/oauth/token")
    );
}

#[test]
fn a_client_certificate_puts_its_thumbprints_in_the_header_and_another_keys_stops_the_provider() {
    let (dir, path, key) = key_file(ClientKeyAlg::Rs256);
    let cert_path = dir.path().join("client.crt");
    let pem = ClientCertificate::self_signed(&key, "doorward", 30).expect("certificate");
    std::fs::write(&cert_path, &pem).expect("write");
    let cert = ClientCertificate::from_pem(&pem, "mem", &key).expect("certificate");
    let provider = provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\nclient_certificate = '{}'\nclient_key_id = 'entra-1'\n",
        path.display(),
        cert_path.display()
    ))
    .expect("provider");
    let assertion = provider
        .client_assertion("https://idp.test/oauth/token")
        .expect("assertion");
    assert_eq!(
        decode(assertion.split('.').next().expect("header")),
        json!({"alg": "RS256", "typ": "JWT", "kid": "entra-1", "x5t": cert.x5t(), "x5t#S256": cert.x5t_s256()})
    );

    // Without a certificate: no thumbprint to name.
    let plain = self::provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\n",
        path.display()
    ))
    .expect("provider");
    let header = decode(
        plain
            .client_assertion("aud")
            .expect("assertion")
            .split('.')
            .next()
            .expect("header"),
    );
    assert!(
        header.get("x5t").is_none() && header.get("x5t#S256").is_none(),
        "{header}"
    );

    // The certificate of another key: refused before any IdP sees it.
    let (_other_dir, other_path, _other) = key_file(ClientKeyAlg::Rs256);
    let refused = self::provider(&format!(
        "client_auth = 'private_key_jwt'\nclient_key = '{}'\nclient_certificate = '{}'\n",
        other_path.display(),
        cert_path.display()
    ));
    assert!(
        matches!(&refused, Err(OidcError::Config(m)) if m.starts_with("client_certificate does not belong to client_key")),
        "{:?}",
        refused.err()
    );
}
