//! Bearer tokens and the keys behind them: a route pinned to one provider
//! refuses another provider's token even when doorward has it cached, and
//! a token signed with a key the IdP stopped publishing is refused once
//! doorward's scheduled metadata refresh has seen the new key set.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::idp::{Browser, Idp};
use crate::scenario::{api_call, api_client_tokens, Options, Scenario, API_RESOURCE};

fn access_token(tokens: &serde_json::Value) -> String {
    tokens["access_token"].as_str().expect("access_token").to_string()
}

#[tokio::test]
async fn a_pinned_route_refuses_another_providers_token_and_session_even_when_cached() {
    // A second, separate IdP: its tokens are really another provider's.
    let other = Idp::start(
        &json!([Idp::api_client()]),
        &Idp::accounts(),
        &[("OIDC_API_RESOURCE", API_RESOURCE)],
    );
    let s = Scenario::start(Options {
        route: "bearer = true".into(),
        extra: format!(
            "[[route]]\nname = \"first-only\"\npath_prefix = \"/first\"\nupstream = \"@UPSTREAM@\"\n\
             bearer = true\nprovider = \"test-idp\"\n\n\
             [[route]]\nname = \"second-only\"\npath_prefix = \"/second\"\nupstream = \"@UPSTREAM@\"\n\
             bearer = true\nprovider = \"second\"\n\n\
             [[provider]]\nname = \"second\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"doorward\"\n\
             client_secret = \"doorward-test-secret\"\nbearer_audiences = [\"{API_RESOURCE}\"]\n",
            other.issuer
        ),
        ..Options::default()
    })
    .await;
    let first = access_token(&api_client_tokens(&s.idp, "bob").await);
    let second = access_token(&api_client_tokens(&other, "alice").await);

    // On the unpinned route both are logins; now both are cached.
    for (token, idp) in [(&first, "test-idp"), (&second, "second")] {
        let page = api_call(&s, "/api", token).await;
        assert_eq!(page.status, 200, "{idp}: {}", page.body);
        assert_eq!(s.upstream.last().header("x-forwarded-idp"), Some(idp));
    }
    // Pinned routes take their own provider's token and refuse the other
    // one, straight from the cache.
    let before = s.upstream.requests().len();
    for (path, token, want) in [
        ("/first/x", &second, 401),
        ("/second/x", &first, 401),
        ("/_doorward/auth?route=first-only", &second, 401),
        ("/_doorward/auth?route=second-only", &first, 401),
    ] {
        let page = api_call(&s, path, token).await;
        assert_eq!(page.status, want, "{path}: {}", page.body);
        assert!(page.header("x-forwarded-user").is_none(), "{path}");
        assert!(page.header("www-authenticate").is_some(), "{path}");
    }
    assert_eq!(s.upstream.requests().len(), before, "nothing refused was forwarded");
    assert_eq!(api_call(&s, "/first/x", &first).await.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(api_call(&s, "/second/x", &second).await.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

    // A session from test-idp is not the second-only route's user: the
    // browser is sent to log in there, with the pinned provider.
    let mut browser = Browser::default();
    let landed = browser.login(&s.url("/first/home"), "bob", &s.idp).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    let page = browser.get(&s.url("/second/y?z=1")).await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.header("location"),
        Some("/_doorward/login?rd=%2Fsecond%2Fy%3Fz%3D1&provider=second")
    );
    assert_eq!(
        browser.get(&s.url("/_doorward/auth?route=second-only")).await.status,
        401
    );
    assert_eq!(browser.get(&s.url("/first/again")).await.status, 200);
}

#[tokio::test]
async fn a_token_signed_with_a_key_the_idp_removed_is_refused_after_the_scheduled_refresh() {
    let s = Scenario::start(Options {
        route: "bearer = true".into(),
        provider: "metadata_refresh = \"1s\"".into(),
        ..Options::default()
    })
    .await;
    let old = access_token(&api_client_tokens(&s.idp, "bob").await);
    assert_eq!(api_call(&s, "/api", &old).await.status, 200, "accepted, and cached");

    // The IdP rotates its keys (say, the old one leaked): the old key is
    // no longer published. doorward's scheduled refresh (every second
    // here) must stop trusting it, cached verdicts included.
    let kids = s.idp.rotate_keys().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = api_call(&s, "/api", &old).await;
        if page.status == 401 {
            assert!(page.header("www-authenticate").is_some());
            break;
        }
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            Instant::now() < deadline,
            "a token signed with a removed key was still accepted 10 s after the IdP stopped publishing it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A token signed with the new key is accepted.
    let new = access_token(&api_client_tokens(&s.idp, "bob").await);
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            new.split('.').next().expect("a JWT"),
        )
        .expect("b64"),
    )
    .expect("json");
    assert!(kids.iter().any(|k| header["kid"] == *k), "{header} signed by {kids:?}");
    assert_eq!(api_call(&s, "/api", &new).await.status, 200);
    assert_eq!(
        api_call(&s, "/api", &old).await.status,
        401,
        "and the old one stays refused"
    );
}
