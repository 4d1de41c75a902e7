//! The endpoints dispatcher: which path is which endpoint, and each
//! endpoint's methods (any other is 405 before the handler runs).

use http::Method;

use super::harness::{empty, head, TestAuth, CORP};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;

#[test]
fn paths_name_their_endpoints_and_nothing_else() {
    let cases = [
        ("/login", Some(Endpoint::Login)),
        ("/callback", Some(Endpoint::Callback)),
        ("/logout", Some(Endpoint::Logout)),
        ("/logged-out", Some(Endpoint::LoggedOut)),
        ("/backchannel-logout", Some(Endpoint::BackchannelLogout)),
        ("/auth", Some(Endpoint::ForwardAuth)),
        ("/userinfo", Some(Endpoint::Userinfo)),
        ("/debug", Some(Endpoint::Debug)),
        ("/saml/metadata", Some(Endpoint::SamlMetadata)),
        ("/saml/acs", Some(Endpoint::SamlAcs)),
        ("/saml/slo", Some(Endpoint::SamlSlo)),
        ("/login/", None),
        ("/LOGIN", None),
        ("/saml", None),
        ("", None),
        ("/healthz", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Endpoint::parse(path), expected, "{path}");
    }
}

#[tokio::test]
async fn other_methods_are_refused_before_any_handler_runs() {
    let t = TestAuth::new(CORP).await;
    let cases = [
        (Endpoint::Login, Method::POST),
        (Endpoint::Callback, Method::POST),
        (Endpoint::Logout, Method::PUT),
        (Endpoint::LoggedOut, Method::POST),
        (Endpoint::BackchannelLogout, Method::GET),
        (Endpoint::Userinfo, Method::POST),
        (Endpoint::Debug, Method::POST),
        (Endpoint::Debug, Method::HEAD),
        (Endpoint::SamlMetadata, Method::POST),
        (Endpoint::SamlAcs, Method::GET),
        (Endpoint::SamlSlo, Method::DELETE),
    ];
    for (endpoint, method) in cases {
        let parts = head(method.clone(), "https://dw.test/_doorward/x", &[]);
        let result = handle(&t.auth, endpoint, &parts, empty()).await;
        assert!(
            matches!(result, Err(AuthError::MethodNotAllowed)),
            "{endpoint:?} {method}: {:?}",
            result.map(|r| r.status())
        );
    }
}

#[tokio::test]
async fn forward_auth_answers_every_method() {
    let t = TestAuth::new(CORP).await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let parts = head(method, "https://dw.test/_doorward/auth", &[]);
        let result = handle(&t.auth, Endpoint::ForwardAuth, &parts, empty()).await;
        assert!(matches!(result, Err(AuthError::Unauthenticated)));
    }
}

#[tokio::test]
async fn failed_callbacks_are_counted_by_outcome() {
    let t = TestAuth::new(CORP).await;
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/callback?state=abcdefgh12345678",
        &[],
    );
    let result = handle(&t.auth, Endpoint::Callback, &parts, empty()).await;
    assert!(matches!(result, Err(AuthError::LoginFailed(_))));
    let metrics = t.metrics.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("doorward_logins_total{") && l.contains("outcome=\"failed\"") && l.ends_with(" 1")),
        "{metrics}"
    );
}
