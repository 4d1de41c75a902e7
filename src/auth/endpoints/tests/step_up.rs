//! Step-up in process: a login asked to prove more is refused when the
//! IdP's answer falls short, raises the same session when it comes back as
//! the same user, and is refused when it comes back as another; forward-auth
//! answers a weak session with the RFC 9470 challenge.

use http::{Method, StatusCode};

use super::harness::{empty, head, login_result, TestAuth, CORP, START};
use crate::auth::endpoints::login::finish;
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;
use crate::login::pending::{PendingLogin, ProtocolState};
use crate::login::{AssuranceAsk, Authentication, LoginResult};
use crate::session::SessionId;
use crate::snapshot_member::SnapshotMember;
use crate::store::{SessionKey, SessionSelector, SessionStore};

/// Routes after the harness's `corp` provider ([`CORP`]).
const ROUTES: &str = r#"
[[route]]
name = "app"
upstream = "http://127.0.0.1:9"

[[route]]
name = "payroll"
path_prefix = "/payroll"
upstream = "http://127.0.0.1:9"
acr = ["urn:mfa"]
max_age = "15m"
"#;

fn ask() -> AssuranceAsk {
    AssuranceAsk {
        acr: vec!["urn:mfa".into()],
        max_age: Some(900),
        amr: Vec::new(),
    }
}

/// A step-up login started for the payroll route, raising `raises`.
fn pending(raises: Option<SessionKey>) -> PendingLogin {
    PendingLogin {
        provider: "corp".into(),
        key: "step-up-key-0123456789".into(),
        state: ProtocolState::Oidc {
            nonce: "n".into(),
            pkce_verifier: "v".into(),
        },
        return_to: "/payroll".into(),
        created_at: START,
        ask: ask(),
        raises: raises.map(|k| k.0),
    }
}

/// `sub`'s login made with `acr`, `age` seconds ago.
fn login(sub: &str, acr: &str, age: i64) -> LoginResult {
    LoginResult {
        authentication: Authentication {
            acr: Some(acr.into()),
            amr: vec!["pwd".into(), "otp".into()],
            auth_time: Some(START - age),
        },
        ..login_result(sub, &["staff"])
    }
}

/// The store key of the session a `Cookie` header value names.
fn key_of(t: &TestAuth, cookie: &str) -> SessionKey {
    let (name, sealed) = cookie.split_once('=').expect("name=value");
    let id = t.auth.sessions.keys().open_cookie(name, sealed).expect("opens");
    SessionId::key_of(&id).expect("an id")
}

async fn stored_acr(t: &TestAuth, key: &SessionKey) -> Option<String> {
    let record = t.auth.sessions.store().get(key).await.expect("read").expect("session");
    Authentication::of_snapshot(&record.claims).acr
}

fn sets_session_cookie(t: &TestAuth, reply: &crate::respond::Reply) -> bool {
    let name = &t.auth.sessions.settings.cookie_name;
    reply
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap_or_default().starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn an_answer_weaker_or_older_than_asked_is_refused_and_stores_nothing() {
    let t = TestAuth::new(&format!("{CORP}{ROUTES}")).await;
    for (result, why) in [
        (
            login("u1", "urn:pwd", 10),
            "the login's acr `urn:pwd` is not one of those asked for (`urn:mfa`)",
        ),
        (
            login("u1", "urn:mfa", 3_600),
            "the login is 3600 s old; max_age is 900 s",
        ),
        (
            LoginResult {
                authentication: Authentication {
                    acr: Some("urn:mfa".into()),
                    ..Authentication::default()
                },
                ..login_result("u1", &[])
            },
            "the login carries no auth_time though max_age was asked for",
        ),
    ] {
        let pending = pending(None);
        match finish(&t.auth, result, "/payroll", Some((&pending, "dw-login-x"))).await {
            Err(AuthError::LoginFailed(reason)) => assert_eq!(
                reason,
                format!("the login of `u1` at `corp` does not prove what was asked: {why}")
            ),
            other => panic!("{why}: {:?}", other.err()),
        }
    }
    let stored = t
        .auth
        .sessions
        .store()
        .list_sessions(&SessionSelector::default())
        .await
        .expect("list");
    assert!(stored.is_empty(), "a refused login stored a session");
}

#[tokio::test]
async fn a_step_up_of_the_same_user_raises_the_same_session() {
    let t = TestAuth::new(&format!("{CORP}{ROUTES}")).await;
    let cookie = t.session("u1", &["staff"]).await;
    let key = key_of(&t, &cookie);
    assert_eq!(stored_acr(&t, &key).await, None);
    let pending = pending(Some(key));
    let reply = finish(
        &t.auth,
        login("u1", "urn:mfa", 5),
        "/payroll",
        Some((&pending, "dw-login-x")),
    )
    .await
    .expect("raised");
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert!(!sets_session_cookie(&t, &reply), "the browser keeps its session cookie");
    assert_eq!(stored_acr(&t, &key).await.as_deref(), Some("urn:mfa"));
    // The raised session now passes the route: forward-auth admits it.
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/auth?route=payroll",
        &[("cookie", &cookie)],
    );
    let reply = handle(&t.auth, Endpoint::ForwardAuth, &parts, empty())
        .await
        .expect("admitted");
    assert_eq!(
        reply.headers().get("x-forwarded-acr").map(|v| v.as_bytes()),
        Some(&b"urn:mfa"[..])
    );
}

#[tokio::test]
async fn a_step_up_that_comes_back_as_another_user_is_refused_and_changes_nothing() {
    let t = TestAuth::new(&format!("{CORP}{ROUTES}")).await;
    let cookie = t.session("u1", &["staff"]).await;
    let key = key_of(&t, &cookie);
    let pending = pending(Some(key));
    match finish(
        &t.auth,
        login("u2", "urn:mfa", 5),
        "/payroll",
        Some((&pending, "dw-login-x")),
    )
    .await
    {
        Err(AuthError::LoginFailed(reason)) => assert_eq!(
            reason,
            "the step-up of the session of `u1` came back as another user (`u2`)"
        ),
        other => panic!("{:?}", other.err()),
    }
    assert_eq!(stored_acr(&t, &key).await, None, "the session was not raised");
}

#[tokio::test]
async fn forward_auth_answers_a_weak_session_with_the_rfc_9470_challenge() {
    let t = TestAuth::new(&format!("{CORP}{ROUTES}")).await;
    let cookie = t.session("u1", &["staff"]).await;
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/auth?route=payroll",
        &[("cookie", &cookie)],
    );
    let Err(error) = handle(&t.auth, Endpoint::ForwardAuth, &parts, empty()).await else {
        panic!("a weak session was admitted");
    };
    assert_eq!(crate::respond::Failure::status(&error), StatusCode::UNAUTHORIZED);
    assert_eq!(
        crate::respond::Failure::challenge(&error).as_deref(),
        Some(
            "Bearer realm=\"doorward\", error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"urn:mfa\", max_age=\"900\""
        )
    );
    // The route that asks nothing still admits the session.
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/auth?route=app",
        &[("cookie", &cookie)],
    );
    assert!(handle(&t.auth, Endpoint::ForwardAuth, &parts, empty()).await.is_ok());
}
