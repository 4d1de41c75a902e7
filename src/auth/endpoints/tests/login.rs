//! `/login` and the pending login it leaves: the chooser, unknown
//! providers, and the returning browser's cookie (missing, for another
//! login, expired), through the callback that recalls it.

use http::{Method, StatusCode};

use super::harness::{empty, head, text, TestAuth, CORP};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;
use crate::login::pending::{self, PendingLogin, ProtocolState};

const TWO: &str = r#"
[[provider]]
name = "corp"
display_name = "Corp SSO"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"

[[provider]]
name = "partners"
display_name = "Partner Login"
kind = "oidc"
issuer = "https://partners.test"
client_id = "doorward"
"#;

const KEY: &str = "pendingkey0123456789abcdef";

#[tokio::test]
async fn several_providers_and_none_named_show_the_chooser() {
    let t = TestAuth::new(TWO).await;
    let parts = head(Method::GET, "https://dw.test/_doorward/login?rd=%2Fapp%2Freport", &[]);
    let reply = handle(&t.auth, Endpoint::Login, &parts, empty())
        .await
        .expect("chooser");
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(reply.headers().get(http::header::SET_COOKIE).is_none());
    let page = text(reply).await;
    assert!(page.contains("Corp SSO") && page.contains("Partner Login"), "{page}");
    assert!(
        page.contains("href=\"/_doorward/login?provider=partners&amp;rd=%2Fapp%2Freport\""),
        "{page}"
    );
}

#[tokio::test]
async fn an_unsafe_return_path_is_not_offered_back() {
    let t = TestAuth::new(TWO).await;
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/login?rd=https%3A%2F%2Fevil.test%2Fsteal",
        &[],
    );
    let reply = handle(&t.auth, Endpoint::Login, &parts, empty())
        .await
        .expect("chooser");
    assert!(!text(reply).await.contains("evil.test"));
}

#[tokio::test]
async fn an_unknown_provider_is_a_bad_request() {
    let t = TestAuth::new(TWO).await;
    let parts = head(Method::GET, "https://dw.test/_doorward/login?provider=nope", &[]);
    let result = handle(&t.auth, Endpoint::Login, &parts, empty()).await;
    assert!(matches!(result, Err(AuthError::BadRequest("no such provider"))));
}

/// A sealed pending login for `KEY`, as `/login` would have set it, made
/// at `created_at`; returns the `Cookie` header value.
fn pending_cookie(t: &TestAuth, state: ProtocolState, created_at: i64) -> String {
    let pending = PendingLogin {
        provider: "corp".into(),
        key: KEY.into(),
        state,
        return_to: "/app".into(),
        created_at,
        ask: Default::default(),
        raises: None,
    };
    let name = pending::cookie_name(&t.auth.cookie_base, KEY).expect("name");
    format!("{name}={}", pending.seal(&t.auth.sessions.keys(), &name))
}

fn oidc_state() -> ProtocolState {
    ProtocolState::Oidc {
        nonce: "n-0123456789".into(),
        pkce_verifier: "v-0123456789".into(),
    }
}

async fn callback(t: &TestAuth, query: &str, cookie: Option<&str>) -> Result<http::StatusCode, AuthError> {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    let parts = head(
        Method::GET,
        &format!("https://dw.test/_doorward/callback?{query}"),
        &headers,
    );
    handle(&t.auth, Endpoint::Callback, &parts, empty())
        .await
        .map(|r| r.status())
}

fn failed_with(result: Result<StatusCode, AuthError>, expected: &str) {
    match result {
        Err(AuthError::LoginFailed(why)) => assert_eq!(why, expected),
        other => panic!("expected LoginFailed({expected}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_callback_without_state_or_cookie_is_refused() {
    let t = TestAuth::new(CORP).await;
    failed_with(
        callback(&t, "code=abc", None).await,
        "the callback has no usable state parameter",
    );
    failed_with(
        callback(&t, &format!("code=abc&state={KEY}"), None).await,
        "no login cookie matches the state (expired, another browser, or forged)",
    );
}

#[tokio::test]
async fn a_pending_login_past_its_time_is_refused() {
    let t = TestAuth::new(CORP).await;
    let cookie = pending_cookie(&t, oidc_state(), t.clock.now());
    t.clock.advance(t.auth.login_timeout + 1);
    failed_with(
        callback(&t, &format!("code=abc&state={KEY}"), Some(&cookie)).await,
        "the login took too long",
    );
}

#[tokio::test]
async fn a_cookie_sealed_for_another_login_does_not_open() {
    let t = TestAuth::new(CORP).await;
    let cookie = pending_cookie(&t, oidc_state(), t.clock.now());
    let forged = format!("{}x", cookie);
    failed_with(
        callback(&t, &format!("code=abc&state={KEY}"), Some(&forged)).await,
        "the login cookie does not open (tampered or another deployment's)",
    );
}

#[tokio::test]
async fn a_saml_login_cannot_finish_at_the_oidc_callback() {
    let t = TestAuth::new(CORP).await;
    let state = ProtocolState::Saml {
        request_id: "id-0123456789".into(),
    };
    let cookie = pending_cookie(&t, state, t.clock.now());
    failed_with(
        callback(&t, &format!("code=abc&state={KEY}"), Some(&cookie)).await,
        "the login in progress is not an OpenID Connect login",
    );
}

#[tokio::test]
async fn an_error_from_the_idp_ends_the_login() {
    let t = TestAuth::new(CORP).await;
    failed_with(
        callback(&t, "error=access_denied&error_description=no&state=x", None).await,
        "the identity provider answered `access_denied`: no",
    );
}
