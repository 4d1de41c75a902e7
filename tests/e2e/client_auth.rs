//! Client authentication against the real OpenID provider (node
//! oidc-provider): `private_key_jwt` accepted with the registered key and
//! refused with another, at login and refresh, and with a client
//! certificate (Entra ID's `x5t`); pushed authorization
//! requests when advertised, required, or asked for and missing; and what
//! `doorward check` and `doorward keygen --client` say of client keys and
//! certificates.

use std::process::Command;

use serde_json::{json, Value};
use url::Url;

use crate::idp::Browser;
use crate::scenario::{Options, Scenario};
use crate::support::write_config;
use doorward::assertion::client_certificate::ClientCertificate;
use doorward::assertion::client_key::{ClientKey, ClientKeyAlg};

/// A client key in a temporary directory, and the IdP registration that
/// trusts `registered` (the same key, or another one for the refusal).
struct KeyJwt {
    _dir: tempfile::TempDir,
    client_auth: String,
    idp_client: Value,
}

fn key_jwt(alg: ClientKeyAlg, registered: Option<&ClientKey>) -> KeyJwt {
    let dir = tempfile::tempdir().expect("dir");
    let key = ClientKey::generate(alg).expect("key");
    let path = dir.path().join("client.pem");
    std::fs::write(&path, key.to_pem().expect("pem")).expect("write key");
    let jwk = registered.unwrap_or(&key).public_jwk("doorward-1");
    KeyJwt {
        _dir: dir,
        client_auth: format!(
            "client_auth = \"private_key_jwt\"\nclient_key = \"{}\"\nclient_key_id = \"doorward-1\"",
            path.display()
        ),
        idp_client: json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}),
    }
}

async fn scenario(key: Option<&KeyJwt>, par_env: &'static str, extra: &str) -> Scenario {
    Scenario::start(Options {
        client_auth: key.map(|k| k.client_auth.clone()),
        idp_client: key.map(|k| k.idp_client.clone()),
        idp_env: vec![("OIDC_PAR", par_env)],
        provider: extra.to_string(),
        // Every request is "close to expiry": each one refreshes.
        session: "refresh_before = \"1h\"".into(),
        ..Options::default()
    })
    .await
}

/// Where doorward sends a browser to log in.
async fn authorization_redirect(s: &Scenario) -> (Browser, Url) {
    let mut browser = Browser::default();
    let page = browser.get(&s.url("/_doorward/login?rd=/")).await;
    assert!((300..400).contains(&page.status), "{} {}", page.status, page.body);
    let location = page.location().expect("location");
    (browser, location)
}

fn param_names(url: &Url) -> Vec<String> {
    let mut names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn private_key_jwt_logs_in_and_refreshes_with_each_key_type() {
    for alg in [ClientKeyAlg::Es256, ClientKeyAlg::Rs256, ClientKeyAlg::EdDsa] {
        let key = key_jwt(alg, None);
        let s = scenario(Some(&key), "off", "").await;
        let mut browser = s.logged_in("alice", "/").await;
        assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

        // The refresh grant authenticates with a new assertion (the OP
        // refuses a replayed jti) and brings the changed groups.
        s.idp
            .set_account(
                "alice",
                &json!({"email": "alice@example.com", "email_verified": true, "groups": ["admins"]}),
            )
            .await;
        let page = browser.get(&s.url("/after-change")).await;
        assert_eq!(page.status, 200, "{alg:?}: refresh with private_key_jwt");
        assert_eq!(
            s.upstream.last().header("x-forwarded-groups"),
            Some("admins"),
            "{alg:?}"
        );
        let page = browser.get(&s.url("/again")).await;
        assert_eq!(page.status, 200, "{alg:?}: a second refresh, a second assertion");
    }
}

/// Entra ID's way: a certificate for the key, named by `x5t` and
/// `x5t#S256` in the assertion's header. (oidc-provider picks the client's
/// key by `kid` and `alg` and ignores `x5t`, so this shows a standard OP
/// accepts the extra header and serve loads the certificate; which key
/// `x5t` names is the unit tests' business.)
#[tokio::test]
async fn private_key_jwt_with_a_client_certificate_logs_in_and_refreshes() {
    let key = key_jwt(ClientKeyAlg::Rs256, None);
    let pem = std::fs::read_to_string(key._dir.path().join("client.pem")).expect("key");
    let client_key = ClientKey::from_pem(&pem, "client.pem").expect("key");
    let cert = key._dir.path().join("client.crt");
    std::fs::write(
        &cert,
        ClientCertificate::self_signed(&client_key, "doorward", 30).expect("certificate"),
    )
    .expect("write certificate");
    // The directory the key is in keeps the certificate too.
    let with_cert = KeyJwt {
        client_auth: format!("{}\nclient_certificate = \"{}\"", key.client_auth, cert.display()),
        ..key
    };
    let s = scenario(Some(&with_cert), "off", "").await;
    let mut browser = s.logged_in("alice", "/").await;
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
    let page = browser.get(&s.url("/again")).await;
    assert_eq!(page.status, 200, "a refresh with the certificate's thumbprints");
}

#[tokio::test]
async fn a_key_the_provider_does_not_know_is_refused_by_it() {
    let registered = ClientKey::generate(ClientKeyAlg::Es256).expect("key");
    let key = key_jwt(ClientKeyAlg::Es256, Some(&registered));
    let s = scenario(Some(&key), "off", "").await;
    let mut browser = Browser::default();
    let page = browser.login(&s.url("/"), "alice", &s.idp).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.url.path(), "/_doorward/callback");
    assert!(browser.cookie("doorward").is_none(), "no session");
    assert!(s.upstream.requests().is_empty(), "nothing reached the app");
}

#[tokio::test]
async fn par_is_used_when_the_provider_advertises_it() {
    let s = scenario(None, "on", "").await;
    let (mut browser, location) = authorization_redirect(&s).await;
    assert!(
        location.as_str().starts_with(&format!("{}/auth?", s.idp.issuer)),
        "{location}"
    );
    // Only the pushed request's handle travels through the browser: the
    // OP saw the parameters over the back channel.
    assert_eq!(param_names(&location), ["client_id", "request_uri"], "{location}");
    let request_uri = location
        .query_pairs()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.into_owned())
        .expect("request_uri");
    assert!(
        request_uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{request_uri}"
    );
    // The OP takes the handle: the login goes on as without PAR.
    let page = browser.login(location.as_str(), "alice", &s.idp).await;
    assert_eq!(page.status, 200, "{} {}", page.url, page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

    // par = "never" keeps the plain request when the OP allows it.
    let s = scenario(None, "on", "par = \"never\"").await;
    let (_, location) = authorization_redirect(&s).await;
    let names = param_names(&location);
    for name in ["scope", "redirect_uri", "code_challenge", "state", "nonce"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {location}");
    }
}

#[tokio::test]
async fn par_required_by_the_provider_is_used_even_with_never_and_private_key_jwt() {
    let s = scenario(None, "required", "par = \"never\"").await;
    let (_, location) = authorization_redirect(&s).await;
    assert_eq!(param_names(&location), ["client_id", "request_uri"], "{location}");
    s.logged_in("alice", "/").await;

    // The push authenticates with a client assertion too.
    let key = key_jwt(ClientKeyAlg::Es256, None);
    let s = scenario(Some(&key), "required", "").await;
    s.logged_in("bob", "/").await;
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));

    // A wrong key is refused at the push already: no login starts.
    let registered = ClientKey::generate(ClientKeyAlg::Es256).expect("key");
    let key = key_jwt(ClientKeyAlg::Es256, Some(&registered));
    let s = scenario(Some(&key), "required", "").await;
    let page = Browser::default().get(&s.url("/_doorward/login?rd=/")).await;
    assert_eq!(page.status, 401, "{}", page.body);
}

#[tokio::test]
async fn par_always_without_an_endpoint_fails_the_login_clearly() {
    let s = scenario(None, "off", "par = \"always\"").await;
    let page = Browser::default().get(&s.url("/_doorward/login?rd=/")).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.location().is_none(), "no redirect to the IdP");
}

fn doorward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doorward"))
}

fn check(provider: &str) -> (Option<i32>, String) {
    let file = write_config(&format!(
        "[server]\npublic_url = \"http://127.0.0.1:4180\"\n[session]\nkeys = [\"k0123456789abcdef0123456789abcdef\"]\n\
         [[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n\
         [[provider]]\nname = \"idp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n{provider}"
    ));
    let output = doorward().args(["check", "-c"]).arg(file.path()).output().expect("run");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn keygen_client_makes_a_key_check_accepts_and_check_names_unusable_ones() {
    let dir = tempfile::tempdir().expect("dir");
    for alg in ["RS256", "ES256", "EdDSA"] {
        let path = dir.path().join(format!("{alg}.pem"));
        let output = doorward()
            .args(["keygen", "--client", "--alg", alg, "--out"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let jwk: Value = serde_json::from_slice(&output.stdout).expect("the JWK alone on stdout");
        assert_eq!(jwk["alg"], alg);
        let key = ClientKey::from_file(&path).expect("the written key loads");
        assert_eq!(jwk["kid"], key.thumbprint());
        assert!(jwk.get("d").is_none(), "no private part in the JWK");
        let (code, stderr) = check(&format!(
            "client_auth = \"private_key_jwt\"\nclient_key = \"{}\"\n",
            path.display()
        ));
        assert_eq!(code, Some(0), "{stderr}");
    }

    // --certificate: a self-signed certificate check accepts with its key,
    // and refuses with another key.
    let (key, cert) = (dir.path().join("entra.pem"), dir.path().join("entra.crt"));
    let output = doorward()
        .args(["keygen", "--client", "--alg", "RS256", "--out"])
        .arg(&key)
        .arg("--certificate")
        .arg(&cert)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let written = ClientKey::from_file(&key).expect("the written key loads");
    ClientCertificate::from_file(&cert, &written).expect("a certificate for the written key");
    let with_cert = |key: &std::path::Path| {
        format!(
            "client_auth = \"private_key_jwt\"\nclient_key = \"{}\"\nclient_certificate = \"{}\"\n",
            key.display(),
            cert.display()
        )
    };
    let (code, stderr) = check(&with_cert(&key));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = check(&with_cert(&dir.path().join("RS256.pem")));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!(
            "provider[0].client_certificate: client_certificate does not belong to client_key: {} certifies another public key",
            cert.display()
        )),
        "{stderr}"
    );
    let (code, stderr) = check(&with_cert(&cert));
    assert_eq!(code, Some(1), "a certificate is not a key");
    assert!(stderr.contains("provider[0].client_key:"), "{stderr}");

    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").expect("write");
    let (code, stderr) = check(&format!(
        "client_auth = \"private_key_jwt\"\nclient_key = \"{}\"\n",
        cert.display()
    ));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!("provider[0].client_key: {} is not an RSA", cert.display())),
        "{stderr}"
    );
    let (code, stderr) = check("client_auth = \"private_key_jwt\"\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("provider[0].client_auth: client_auth = \"private_key_jwt\" needs client_key"),
        "{stderr}"
    );
    let (code, stderr) = check("client_secret = \"s\"\npar = \"sometimes\"\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("provider[0]: unknown variant `sometimes`, expected one of `auto`, `always`, `never`"),
        "{stderr}"
    );
}
