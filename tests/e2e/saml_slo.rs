//! IdP-initiated SAML logout is not a logout-CSRF tool: a LogoutRequest
//! is accepted once (a replay changes nothing), and one that names another
//! user's session ends that session but leaves the visiting browser's own.

use crate::idp::{Browser, Page};
use crate::saml::SamlScenario;
use crate::saml_peer::saml_login;

/// The IdP's LogoutRequest for `user` in `binding`, delivered by `browser`.
async fn deliver(browser: &mut Browser, request: &serde_json::Value, binding: &str) -> Page {
    let url = url::Url::parse(request["url"].as_str().expect("url")).expect("url");
    if binding == "redirect" {
        return browser.request("GET", &url, None).await;
    }
    let fields: Vec<(String, String)> = request["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    browser.request("POST", &url, Some(&fields)).await
}

#[tokio::test]
async fn a_replayed_saml_logout_request_changes_nothing() {
    let s = SamlScenario::start("", "").await;
    let mut alice = Browser::default();
    saml_login(&mut alice, &s.url("/"), "alice").await;
    let requests = s.idp.logout("alice", "redirect").await;
    let request = &requests["requests"][0];

    let first = deliver(&mut alice, request, "redirect").await;
    assert_eq!(first.status, 302, "{}", first.body);
    assert!(first.location().is_some_and(|to| to.as_str().contains("SAMLResponse=")));
    assert_eq!(alice.get(&s.url("/")).await.status, 302, "signed out");

    saml_login(&mut alice, &s.url("/"), "alice").await;
    assert_eq!(alice.get(&s.url("/")).await.status, 200, "signed in again");
    let replayed = deliver(&mut alice, request, "redirect").await;
    assert_eq!(replayed.status, 400, "a replay is refused: {}", replayed.body);
    assert!(replayed.location().is_none());
    assert_eq!(alice.get(&s.url("/")).await.status, 200, "the replay changed nothing");
}

#[tokio::test]
async fn a_saml_logout_request_naming_another_users_session_keeps_the_visiting_browsers_cookie() {
    for binding in ["redirect", "post"] {
        let s = SamlScenario::start("", "").await;
        let (mut alice, mut bob) = (Browser::default(), Browser::default());
        saml_login(&mut alice, &s.url("/"), "alice").await;
        saml_login(&mut bob, &s.url("/"), "bob").await;
        let requests = s.idp.logout("bob", binding).await;

        // Bob's LogoutRequest, carried by alice's browser (a page that
        // makes her browser send it).
        let answer = deliver(&mut alice, &requests["requests"][0], binding).await;
        assert_eq!(answer.status, 302, "{binding}: answered: {}", answer.body);
        assert!(
            answer.header("set-cookie").is_none(),
            "{binding}: no cookie of alice's is touched"
        );
        assert_eq!(
            alice.get(&s.url("/")).await.status,
            200,
            "{binding}: alice is still signed in"
        );
        assert_eq!(
            bob.get(&s.url("/")).await.status,
            302,
            "{binding}: the session the IdP named ended"
        );
    }
}
