//! `/logout` and `/logged-out`: the confirmation page, and the POST that
//! ends a session only with a same-site origin and the session's CSRF
//! token.

use http::{Method, StatusCode};

use super::harness::{empty, form, head, header, text, TestAuth, CORP};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;

#[tokio::test]
async fn the_confirmation_page_names_the_signed_in_user() {
    let t = TestAuth::new(CORP).await;
    let cookie = t.session("u1", &[]).await;
    let parts = head(Method::GET, "https://dw.test/_doorward/logout", &[("cookie", &cookie)]);
    let reply = handle(&t.auth, Endpoint::Logout, &parts, empty()).await.expect("page");
    assert_eq!(reply.status(), StatusCode::OK);
    let page = text(reply).await;
    assert!(page.contains("u1@example.com"), "{page}");
    assert!(page.contains("name=\"csrf\""), "{page}");
}

#[tokio::test]
async fn without_a_session_the_signed_out_page_shows() {
    let t = TestAuth::new(CORP).await;
    for endpoint in [Endpoint::Logout, Endpoint::LoggedOut] {
        let parts = head(Method::GET, "https://dw.test/_doorward/logout", &[]);
        let reply = handle(&t.auth, endpoint, &parts, empty()).await.expect("page");
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(!text(reply).await.contains("name=\"csrf\""));
    }
}

#[tokio::test]
async fn a_cross_site_post_is_refused_before_the_form_is_read() {
    let t = TestAuth::new(CORP).await;
    let cookie = t.session("u1", &[]).await;
    let parts = head(
        Method::POST,
        "https://dw.test/_doorward/logout",
        &[("cookie", &cookie), ("origin", "https://evil.test")],
    );
    let result = handle(&t.auth, Endpoint::Logout, &parts, form("csrf=x")).await;
    assert!(matches!(result, Err(AuthError::Csrf)));
}

#[tokio::test]
async fn a_wrong_csrf_token_ends_nothing() {
    let t = TestAuth::new(CORP).await;
    let cookie = t.session("u1", &[]).await;
    for origin in ["https://dw.test", "null"] {
        let parts = head(
            Method::POST,
            "https://dw.test/_doorward/logout",
            &[("cookie", &cookie), ("origin", origin)],
        );
        let result = handle(&t.auth, Endpoint::Logout, &parts, form("csrf=guessed")).await;
        assert!(matches!(result, Err(AuthError::Csrf)), "{origin}");
    }
    // The session still stands.
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/userinfo",
        &[("cookie", &cookie)],
    );
    let reply = handle(&t.auth, Endpoint::Userinfo, &parts, empty())
        .await
        .expect("still signed in");
    assert_eq!(reply.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_post_without_a_session_goes_to_the_signed_out_page() {
    let t = TestAuth::new(CORP).await;
    let parts = head(Method::POST, "https://dw.test/_doorward/logout", &[]);
    let reply = handle(&t.auth, Endpoint::Logout, &parts, form("csrf=x"))
        .await
        .expect("redirect");
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(header(&reply, "location"), t.auth.urls.logged_out);
}

#[tokio::test]
async fn an_oversized_form_is_a_bad_request() {
    let t = TestAuth::new(CORP).await;
    let parts = head(Method::POST, "https://dw.test/_doorward/logout", &[]);
    let big = format!("csrf={}", "a".repeat(9 * 1024));
    let result = handle(&t.auth, Endpoint::Logout, &parts, form(&big)).await;
    assert!(matches!(
        result,
        Err(AuthError::BadRequest("the form body is too large or broken"))
    ));
}
