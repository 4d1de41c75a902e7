//! `/auth`, `/userinfo` and `/debug`: who the caller is, only for a caller
//! the gate admits, by the same rules as a proxied request.

use http::{Method, StatusCode};

use super::harness::{empty, head, header, text, TestAuth};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;

const CONFIG: &str = r#"
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"

[identity]
debug_roles = ["admins"]
[identity.roles]
from_groups = ["admins"]

[[route]]
name = "app"
upstream = "http://127.0.0.1:9"

[[route]]
name = "admin"
path_prefix = "/admin"
upstream = "http://127.0.0.1:9"
require_roles = ["admins"]
"#;

async fn ask(
    t: &TestAuth,
    endpoint: Endpoint,
    uri: &str,
    cookie: Option<&str>,
) -> Result<crate::respond::Reply, AuthError> {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    let parts = head(Method::GET, uri, &headers);
    handle(&t.auth, endpoint, &parts, empty()).await
}

#[tokio::test]
async fn forward_auth_answers_the_identity_of_an_admitted_session() {
    let t = TestAuth::new(CONFIG).await;
    let cookie = t.session("u1", &["staff"]).await;
    let reply = ask(
        &t,
        Endpoint::ForwardAuth,
        "https://dw.test/_doorward/auth",
        Some(&cookie),
    )
    .await
    .expect("admitted");
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(header(&reply, "x-forwarded-user"), "u1@example.com");
    assert_eq!(header(&reply, "x-forwarded-groups"), "staff");
    assert_eq!(header(&reply, "cache-control"), "no-store");
    assert!(!header(&reply, t.signer.header_name().as_str()).is_empty());
}

#[tokio::test]
async fn forward_auth_refuses_by_the_named_route_rules() {
    let t = TestAuth::new(CONFIG).await;
    let cookie = t.session("u1", &["staff"]).await;
    let result = ask(
        &t,
        Endpoint::ForwardAuth,
        "https://dw.test/_doorward/auth?route=admin",
        Some(&cookie),
    )
    .await;
    assert!(
        matches!(result, Err(AuthError::Forbidden(_))),
        "{:?}",
        result.map(|r| r.status())
    );
    let result = ask(
        &t,
        Endpoint::ForwardAuth,
        "https://dw.test/_doorward/auth?route=nope",
        Some(&cookie),
    )
    .await;
    assert!(matches!(result, Err(AuthError::BadRequest("no route by that name"))));
    let admin = t.session("boss", &["admins"]).await;
    let reply = ask(
        &t,
        Endpoint::ForwardAuth,
        "https://dw.test/_doorward/auth?route=admin",
        Some(&admin),
    )
    .await
    .expect("an admin passes");
    assert_eq!(header(&reply, "x-forwarded-user"), "boss@example.com");
}

#[tokio::test]
async fn nobody_and_forged_cookies_are_unauthenticated() {
    let t = TestAuth::new(CONFIG).await;
    let result = ask(&t, Endpoint::ForwardAuth, "https://dw.test/_doorward/auth", None).await;
    assert!(matches!(result, Err(AuthError::Unauthenticated)));
    let forged = format!("{}=not-a-sealed-cookie", t.auth.sessions.settings.cookie_name);
    let result = ask(
        &t,
        Endpoint::Userinfo,
        "https://dw.test/_doorward/userinfo",
        Some(&forged),
    )
    .await;
    assert!(matches!(result, Err(AuthError::Unauthenticated)));
}

#[tokio::test]
async fn an_expired_session_is_nobody() {
    let t = TestAuth::new(CONFIG).await;
    let cookie = t.session("u1", &["staff"]).await;
    let absolute = i64::try_from(t.config.session.absolute_timeout.0.as_secs()).expect("secs");
    t.auth.sessions.flush();
    t.clock.advance(absolute + 1);
    let result = ask(
        &t,
        Endpoint::Userinfo,
        "https://dw.test/_doorward/userinfo",
        Some(&cookie),
    )
    .await;
    assert!(
        matches!(result, Err(AuthError::Unauthenticated)),
        "{:?}",
        result.map(|r| r.status())
    );
}

#[tokio::test]
async fn userinfo_is_the_callers_identity_as_json() {
    let t = TestAuth::new(CONFIG).await;
    let cookie = t.session("u1", &["staff"]).await;
    let reply = ask(
        &t,
        Endpoint::Userinfo,
        "https://dw.test/_doorward/userinfo",
        Some(&cookie),
    )
    .await
    .expect("admitted");
    assert_eq!(reply.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&text(reply).await).expect("json");
    assert_eq!(body["sub"], "u1");
    assert_eq!(body["user"], "u1@example.com");
    assert_eq!(body["groups"], serde_json::json!(["staff"]));
    assert_eq!(body["idp"], "corp");
    assert_eq!(body["idp_issuer"], "https://idp.test");
}

#[tokio::test]
async fn debug_is_for_debug_roles_only() {
    let t = TestAuth::new(CONFIG).await;
    let cookie = t.session("u1", &["staff"]).await;
    let result = ask(&t, Endpoint::Debug, "https://dw.test/_doorward/debug", Some(&cookie)).await;
    match result {
        Err(AuthError::Forbidden(why)) => {
            assert_eq!(why, "user `u1@example.com` holds no [identity] debug_roles role");
        }
        other => panic!("expected Forbidden, got {:?}", other.map(|r| r.status())),
    }
    let admin = t.session("boss", &["admins"]).await;
    let reply = ask(&t, Endpoint::Debug, "https://dw.test/_doorward/debug", Some(&admin))
        .await
        .expect("an admin may");
    assert_eq!(reply.status(), StatusCode::OK);
    let body = text(reply).await;
    assert!(body.contains("boss@example.com"), "{body}");
}
