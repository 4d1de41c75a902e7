//! `policy::decide`: what passes to the upstream, for each thing the gate
//! can say, on public and protected paths.

use std::sync::Arc;

use http::HeaderMap;

use super::super::policy::{decide, Passage, Stop};
use super::super::route::Route;
use super::harness::TestGateway;
use super::process::CONFIG;
use crate::auth::{AuthError, Caller};

fn route(g: &TestGateway, path: &str) -> Arc<Route> {
    Arc::clone(g.gateway.routes.find(Some("dw.test"), path).expect("a route"))
}

async fn caller(g: &TestGateway, sub: &str, groups: &[&str]) -> Option<Caller> {
    let cookie = g.session(sub, groups).await;
    let mut headers = HeaderMap::new();
    headers.insert(http::header::COOKIE, cookie.parse().expect("cookie"));
    g.t.auth.recognise(&headers, false).await.expect("recognised")
}

fn user(passage: &Passage) -> Option<&str> {
    passage.admitted().map(|a| a.identity().user.as_str())
}

#[tokio::test]
async fn public_paths_pass_anyone_and_protected_ones_need_a_caller() {
    let g = TestGateway::new(CONFIG).await;
    let app = route(&g, "/public/logo.png");
    let passage = decide(&app, "/public/logo.png", Ok(None), 0).expect("public");
    assert_eq!(user(&passage), None);
    assert!(matches!(decide(&app, "/private", Ok(None), 0), Err(Stop::Login)));
    // The prefix is a path segment, not a string prefix.
    assert!(matches!(decide(&app, "/publicity", Ok(None), 0), Err(Stop::Login)));
}

#[tokio::test]
async fn a_store_outage_stops_protected_paths_only() {
    let g = TestGateway::new(CONFIG).await;
    let app = route(&g, "/");
    let down = || Err(AuthError::LoginUnavailable("store down".into()));
    assert!(decide(&app, "/public/x", down(), 0).is_ok_and(|p| p.admitted().is_none()));
    match decide(&app, "/private", down(), 0) {
        Err(Stop::Unavailable(AuthError::LoginUnavailable(why))) => assert_eq!(why, "store down"),
        other => panic!("expected Unavailable, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn an_admitted_caller_passes_with_their_identity() {
    let g = TestGateway::new(CONFIG).await;
    let app = route(&g, "/");
    let who = caller(&g, "u1", &["staff"]).await;
    let passage = decide(&app, "/private", Ok(who), 0).expect("admitted");
    assert_eq!(user(&passage), Some("u1@example.com"));
    // On a public path too, the identity goes along when there is one.
    let who = caller(&g, "u1", &["staff"]).await;
    let passage = decide(&app, "/public/x", Ok(who), 0).expect("admitted");
    assert_eq!(user(&passage), Some("u1@example.com"));
}

#[tokio::test]
async fn the_rules_refuse_with_the_callers_name_but_not_on_public_paths() {
    let g = TestGateway::new(CONFIG).await;
    let admin = route(&g, "/admin");
    let who = caller(&g, "u1", &["staff"]).await;
    match decide(&admin, "/admin/users", Ok(who), 0) {
        Err(Stop::Forbidden(denial)) => assert_eq!(denial.account, "u1@example.com"),
        other => panic!("expected Forbidden, got {:?}", other.err()),
    }
    let who = caller(&g, "boss", &["admins"]).await;
    assert!(decide(&admin, "/admin/users", Ok(who), 0).is_ok());
}

#[tokio::test]
async fn another_providers_session_must_log_in_again() {
    let g = TestGateway::new(CONFIG).await;
    let pinned = route(&g, "/partners");
    let who = caller(&g, "u1", &["staff"]).await;
    assert!(matches!(decide(&pinned, "/partners/x", Ok(who), 0), Err(Stop::Login)));
}
