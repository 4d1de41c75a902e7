//! `/backchannel-logout`: what is refused before any key is fetched (no
//! token, a malformed one, one from an issuer no provider has), each
//! counted as refused.

use http::Method;

use super::harness::{form, head, TestAuth, CORP};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;

async fn post(t: &TestAuth, body: &str) -> Result<http::StatusCode, AuthError> {
    let parts = head(
        Method::POST,
        "https://dw.test/_doorward/backchannel-logout",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    handle(&t.auth, Endpoint::BackchannelLogout, &parts, form(body))
        .await
        .map(|r| r.status())
}

fn refused_with(result: Result<http::StatusCode, AuthError>, expected: &str) {
    match result {
        Err(AuthError::BadLogoutToken(why)) => assert_eq!(why, expected),
        other => panic!("expected BadLogoutToken({expected}), got {other:?}"),
    }
}

/// An unsigned JWT with these claims (the issuer is read before any check).
fn token(claims: &serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"logout+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2ln")
}

#[tokio::test]
async fn logout_tokens_that_name_no_provider_are_refused() {
    let t = TestAuth::new(CORP).await;
    refused_with(post(&t, "").await, "no logout_token");
    refused_with(post(&t, "logout_token=not.a-jwt").await, "malformed token");
    let foreign = token(&serde_json::json!({"iss": "https://other.test", "sub": "u1"}));
    refused_with(
        post(&t, &format!("logout_token={foreign}")).await,
        "unknown issuer `https://other.test`",
    );
    let metrics = t.metrics.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("doorward_backchannel_logouts_total{")
                && l.contains("refused")
                && l.ends_with(" 3")),
        "{metrics}"
    );
}
