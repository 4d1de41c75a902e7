//! Logging in with OpenID Connect against a real provider (node
//! oidc-provider on loopback), sessions, refresh, logout, bearer tokens and
//! forward-auth, asserting what a real upstream receives.

use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::idp::Browser;
use crate::scenario::{api_call, api_client_tokens, Options, Scenario, SESSION_KEY};
use crate::support::Proxy;

#[tokio::test]
async fn login_returns_to_the_page_and_the_upstream_sees_the_identity() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = Browser::default();
    let first = browser.get(&s.url("/dashboards/7?tab=a%20b")).await;
    assert_eq!(first.status, 302, "browsers are sent to log in");
    assert!(
        first
            .header("location")
            .is_some_and(|l| l.starts_with("/_doorward/login?rd=")),
        "{:?}",
        first.headers
    );

    let page = browser.login(&s.url("/dashboards/7?tab=a%20b"), "alice", &s.idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.url.as_str(),
        s.url("/dashboards/7?tab=a%20b"),
        "back where the user started"
    );
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/dashboards/7?tab=a%20b");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("engineers,staff"));
    assert!(
        seen.header("cookie").is_none_or(|c| !c.contains("doorward")),
        "the session cookie is not forwarded: {:?}",
        seen.header("cookie")
    );

    let cookie = browser.cookie("doorward").expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.attributes.contains(attribute), "{}", cookie.attributes);
    }
    assert!(
        browser.cookie_named_like("doorward-login-").is_none(),
        "the login cookie is cleared"
    );

    // Logged in, a spoofed identity is still replaced, never merged.
    browser.headers.push(("X-Forwarded-User".into(), "mallory".into()));
    browser.headers.push(("x_forwarded_groups".into(), "admins".into()));
    let page = browser.navigate(&s.url("/other")).await;
    assert_eq!(page.status, 200);
    let seen = s.upstream.last();
    assert_eq!(seen.headers_folding_to("x-forwarded-user").len(), 1);
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.headers_folding_to("x-forwarded-groups").len(), 1);
    assert_eq!(seen.header("x-forwarded-groups"), Some("engineers,staff"));

    // userinfo for single-page apps: the same identity, as JSON.
    let info = browser.navigate(&s.url("/_doorward/userinfo")).await;
    let info = info.json();
    assert_eq!(info["user"], "alice@example.com");
    assert_eq!(info["groups"], json!(["engineers", "staff"]));
    assert_eq!(info["sub"], "alice");
}

#[tokio::test]
async fn api_clients_get_401_json_and_public_paths_need_no_login() {
    let s = Scenario::start(Options::default()).await;
    let mut api = Browser::default();
    api.headers.push(("accept".into(), "application/json".into()));
    let page = api.get(&s.url("/api/things")).await;
    assert_eq!(page.status, 401);
    assert!(page.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    assert_eq!(page.json()["status"], 401);
    let page = Browser::default().get(&s.url("/public/logo.png")).await;
    assert_eq!(page.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), None);
    assert_eq!(s.upstream.requests().len(), 1, "only the public request was forwarded");
}

#[tokio::test]
async fn unsafe_return_targets_fall_back_to_the_root() {
    let s = Scenario::start(Options::default()).await;
    for rd in [
        "//evil.com",
        "https://evil.com/",
        "/%2F%2Fevil.com",
        "javascript:alert(1)",
        "https://127.0.0.1@evil.com/",
    ] {
        let mut browser = Browser::default();
        let rd_encoded: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let page = browser
            .login(&s.url(&format!("/_doorward/login?rd={rd_encoded}")), "alice", &s.idp)
            .await;
        assert_eq!(page.url.as_str(), s.url("/"), "{rd} led to {}", page.url);
    }
}

#[tokio::test]
async fn forward_auth_answers_200_with_identity_or_401() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = s.logged_in("bob", "/").await;
    let page = browser.get(&s.url("/_doorward/auth")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(page.header("x-forwarded-groups"), Some("Marketing%20Team"));
    let page = Browser::default().get(&s.url("/_doorward/auth")).await;
    assert_eq!(page.status, 401);
}

#[tokio::test]
async fn tampered_foreign_and_garbage_cookies_are_no_session() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = s.logged_in("alice", "/").await;
    let good = browser.cookie("doorward").expect("cookie").value.clone();
    let mut bytes = good.clone().into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    for value in [
        String::from_utf8_lossy(&bytes).into_owned(),
        good[..good.len() - 4].to_string(),
        "x".repeat(5000),
        "%%%".to_string(),
        String::new(),
    ] {
        browser.set_cookie_value("doorward", &value);
        let page = browser.get(&s.url("/private")).await;
        assert_eq!(page.status, 302, "cookie {:?}… was accepted", &value.get(..10));
    }
    // The real one still works.
    browser.set_cookie_value("doorward", &good);
    assert_eq!(browser.get(&s.url("/private")).await.status, 200);

    // A cookie sealed by another deployment's key does not open here.
    let foreign_keys = doorward::keyring::KeyRing::new(&[doorward::secret::SecretString::new(
        "another-deployment-key-0123456789abcdefghijkl".into(),
    )])
    .expect("ring");
    let forged = foreign_keys.seal_cookie("doorward", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    browser.set_cookie_value("doorward", &forged);
    assert_eq!(browser.get(&s.url("/private")).await.status, 302);
}

#[tokio::test]
async fn sessions_survive_a_restart_and_expire_on_time() {
    let s = Scenario::start(Options {
        session: "absolute_timeout = \"10s\"".into(),
        clock: Some(doorward::clock::Clock::manual_from_now()),
        ..Options::default()
    })
    .await;
    let mut browser = s.logged_in("alice", "/").await;
    // A second doorward on the same store and keys (a restart, or another
    // replica) knows the session.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = Proxy::start_on(&s.config, listener).await;
    let page = browser.get(&format!("http://{}/after-restart", second.addr)).await;
    assert_eq!(page.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
    // Small steps on doorward's clock: a refresh on the way still finds the
    // IdP's tokens within the allowed skew, so only the timeout can end it.
    s.clock.advance(8);
    assert_eq!(
        browser.get(&s.url("/almost")).await.status,
        200,
        "before the absolute timeout"
    );
    s.clock.advance(3);
    assert_eq!(
        browser.get(&s.url("/late")).await.status,
        302,
        "absolute timeout passed"
    );
}

#[tokio::test]
async fn refresh_picks_up_group_changes_and_a_refused_refresh_ends_the_session() {
    let s = Scenario::start(Options {
        // Every request is "close to expiry": each one refreshes.
        session: "refresh_before = \"1h\"".into(),
        ..Options::default()
    })
    .await;
    let mut browser = s.logged_in("alice", "/").await;
    assert_eq!(s.upstream.last().header("x-forwarded-groups"), Some("engineers,staff"));

    s.idp
        .set_account(
            "alice",
            &json!({"email": "alice@example.com", "email_verified": true, "preferred_username": "alice",
                    "groups": ["admins"]}),
        )
        .await;
    let page = browser.get(&s.url("/after-change")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        s.upstream.last().header("x-forwarded-groups"),
        Some("admins"),
        "removed groups are gone"
    );

    // Concurrent requests share one refresh (rotation would refuse a
    // second use of the same refresh token and end the session).
    let cookie = format!("doorward={}", browser.cookie("doorward").expect("cookie").value);
    let mut tasks = Vec::new();
    for i in 0..5 {
        let url = url::Url::parse(&s.url(&format!("/concurrent/{i}"))).expect("url");
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            crate::idp::raw_request("GET", &url, &[("cookie", cookie.as_str())], bytes::Bytes::new())
                .await
                .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 200);
    }

    s.idp.delete_account("alice").await;
    let page = browser.get(&s.url("/after-delete")).await;
    assert_eq!(page.status, 302, "a refused refresh ends the session");
    assert_eq!(browser.get(&s.url("/again")).await.status, 302);
}

#[tokio::test]
async fn logout_needs_the_csrf_token_then_ends_the_session_at_doorward_and_the_idp() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = s.logged_in("alice", "/").await;
    let confirm = browser.get(&s.url("/_doorward/logout")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("name=\"csrf\""));

    // Without the token (a cross-site form), nothing happens.
    let url = url::Url::parse(&s.url("/_doorward/logout")).expect("url");
    let forged = browser
        .request("POST", &url, Some(&[("csrf".into(), "guess".into())]))
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(browser.get(&s.url("/still-in")).await.status, 200);

    let response = browser.submit(&confirm, "alice", &[]).await;
    // doorward sent the browser to the IdP's end_session_endpoint with an
    // id_token_hint; the provider asks for confirmation.
    assert!(response.url.as_str().starts_with(&s.idp.issuer), "{}", response.url);
    let done = browser.submit(&response, "alice", &[("logout", "yes")]).await;
    assert_eq!(done.url.as_str(), s.url("/_doorward/logged-out"), "{}", done.body);
    assert!(browser.cookie("doorward").is_none(), "session cookie cleared");
    assert_eq!(browser.get(&s.url("/private")).await.status, 302);
}

#[tokio::test]
async fn backchannel_logout_from_the_idp_ends_the_session_and_replays_are_refused() {
    // A relay between the IdP and doorward records the logout token, so the
    // test can replay it.
    let relay = crate::support::Upstream::start().await;
    let s = Scenario::start(Options {
        backchannel: Some(format!("{}/relay", relay.url())),
        ..Options::default()
    })
    .await;
    let mut browser = s.logged_in("alice", "/").await;
    let mut other = s.logged_in("bob", "/").await;

    // alice signs out at the IdP itself (from another app, say).
    let page = browser.navigate(&format!("{}/session/end", s.idp.issuer)).await;
    let done = browser.submit(&page, "alice", &[("logout", "yes")]).await;
    assert!(done.status < 500, "{}", done.body);
    let delivered = relay
        .requests()
        .into_iter()
        .find(|r| r.target == "/relay")
        .expect("the IdP sent a back-channel logout");
    let token_form = delivered.body.clone();
    assert!(token_form.starts_with("logout_token="), "{token_form}");

    let endpoint = url::Url::parse(&s.url("/_doorward/backchannel-logout")).expect("url");
    let post = |body: String| {
        let endpoint = endpoint.clone();
        async move {
            crate::idp::raw_request(
                "POST",
                &endpoint,
                &[("content-type", "application/x-www-form-urlencoded")],
                body.into(),
            )
            .await
        }
    };
    assert_eq!(
        post(token_form.clone()).await.status,
        200,
        "doorward accepts the real token"
    );
    assert_eq!(
        browser.get(&s.url("/private")).await.status,
        302,
        "alice's session ended"
    );
    assert_eq!(other.get(&s.url("/private")).await.status, 200, "bob's did not");
    assert_eq!(post(token_form).await.status, 400, "the same token again is a replay");
    assert_eq!(post("logout_token=not.a.jwt".into()).await.status, 400);
    assert_eq!(post("nothing=here".into()).await.status, 400);
}

#[tokio::test]
async fn access_tokens_are_a_sessionless_login_where_a_route_takes_them() {
    let s = Scenario::start(Options {
        route: "bearer = true".into(),
        extra: format!(
            "[[route]]\nname = \"no-bearer\"\npath_prefix = \"/web\"\nupstream = \"{}\"\n",
            "http://127.0.0.1:9"
        ),
        ..Options::default()
    })
    .await;
    let tokens = api_client_tokens(&s.idp, "bob").await;
    let access = tokens["access_token"].as_str().expect("access_token").to_string();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            access.split('.').next().expect("a JWT"),
        )
        .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["typ"], "at+jwt", "the peer issues RFC 9068 access tokens");

    let ok = api_call(&s, "/api/report", &access).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = s.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("Marketing%20Team"));
    assert_eq!(seen.header("x-forwarded-idp"), Some("test-idp"));
    assert!(ok.header("set-cookie").is_none(), "no session is created");

    // A route that does not take bearer tokens (the default) ignores it.
    assert_eq!(api_call(&s, "/web/x", &access).await.status, 401);

    // An ID token is a login to doorward, not a grant to call an API.
    let id_token = tokens["id_token"].as_str().expect("id_token").to_string();
    assert_eq!(api_call(&s, "/api/report", &id_token).await.status, 401);

    // A token whose payload was altered no longer verifies.
    let mut parts: Vec<String> = access.split('.').map(str::to_string).collect();
    let payload = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1]).expect("b64");
    let mut claims: Value = serde_json::from_slice(&payload).expect("json");
    claims["email"] = json!("admin@example.com");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims.to_string());
    let forged = api_call(&s, "/api/report", &parts.join(".")).await;
    assert_eq!(forged.status, 401);
    assert!(forged.header("www-authenticate").is_some());
    assert_eq!(api_call(&s, "/api/report", "not-a-token").await.status, 401);
}

#[tokio::test]
async fn id_tokens_as_bearer_need_the_weakening_switch() {
    for switch in [false, true] {
        let s = Scenario::start(Options {
            route: "bearer = true".into(),
            headers: "pass_id_token = true".into(),
            provider: format!("insecure_accept_id_token_as_bearer = {switch}"),
            ..Options::default()
        })
        .await;
        // doorward's own ID token for bob, as the upstream was given it.
        let _bob = s.logged_in("bob", "/").await;
        let id_token = s
            .upstream
            .last()
            .header("x-forwarded-id-token")
            .expect("the ID token is passed")
            .to_string();
        let answer = api_call(&s, "/api/report", &id_token).await;
        let want = if switch { 200 } else { 401 };
        assert_eq!(answer.status, want, "switch {switch}: {}", answer.body);
    }
}

#[tokio::test]
async fn state_nonce_and_pkce_tampering_are_refused() {
    let s = Scenario::start(Options::default()).await;
    let keys =
        doorward::keyring::KeyRing::new(&[doorward::secret::SecretString::new(SESSION_KEY.into())]).expect("ring");

    // Each case: start a login, edit what the pending-login cookie holds
    // (the test has the deployment's key), finish at the IdP, and expect
    // the callback to refuse it.
    for field in ["nonce", "pkce_verifier", "key"] {
        let mut browser = Browser::default();
        let start = browser.get(&s.url("/_doorward/login?rd=/x")).await;
        assert_eq!(start.status, 302);
        let cookie = browser
            .cookie_named_like("doorward-login-")
            .expect("login cookie")
            .clone();
        let opened = keys.open_cookie(&cookie.name, &cookie.value).expect("opens");
        let mut pending: Value = serde_json::from_str(&opened).expect("json");
        let tampered = json!(format!("tampered-{field}-0123456789abcdef0123456789abcdef"));
        match field {
            "key" => pending["key"] = tampered,
            _ => pending["state"][field] = tampered,
        }
        browser.set_cookie_value(&cookie.name, &keys.seal_cookie(&cookie.name, &pending.to_string()));
        let page = browser.follow(start).await;
        let mut page = page;
        for _ in 0..4 {
            if page.url.as_str().starts_with(&s.idp.issuer) && page.body.contains("<form") {
                page = browser.submit(&page, "alice", &[]).await;
            }
        }
        assert_eq!(page.status, 401, "{field}: {}", page.body);
        assert!(page.body.contains("Sign-in failed"), "{field}");
        assert!(!page.body.contains(field), "the page does not say why");
        assert!(browser.cookie("doorward").is_none(), "{field}: no session was made");
    }

    // A callback with no login in progress (CSRF / injected code).
    let mut browser = Browser::default();
    let page = browser
        .get(&s.url("/_doorward/callback?code=abc&state=0123456789abcdef"))
        .await;
    assert_eq!(page.status, 401);
    let page = browser
        .get(&s.url("/_doorward/callback?error=access_denied&state=x"))
        .await;
    assert_eq!(page.status, 401);
}

#[tokio::test]
async fn several_providers_get_a_chooser_and_a_route_can_pin_one() {
    let s = Scenario::start(Options {
        extra: "provider = \"test-idp\"\n\n[[provider]]\nname = \"second\"\nkind = \"oidc\"\n\
                display_name = \"Second <IdP>\"\nissuer = \"@ISSUER@\"\nclient_id = \"doorward\"\n\
                client_secret = \"doorward-test-secret\"\n"
            .into(),
        ..Options::default()
    })
    .await;
    // Two providers: /_doorward/login shows a chooser that keeps the return-to.
    let page = Browser::default().get(&s.url("/_doorward/login?rd=%2Fdash")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("provider=test-idp&amp;rd=%2Fdash"), "{}", page.body);
    assert!(page.body.contains("provider=second&amp;rd=%2Fdash"), "{}", page.body);
    assert!(page.body.contains("Second &lt;IdP&gt;"), "display names are escaped");
    // Picking one goes there; an unknown one is a bad request.
    let page = Browser::default().get(&s.url("/_doorward/login?provider=second")).await;
    assert_eq!(page.status, 302);
    assert!(page.header("location").is_some_and(|l| l.starts_with(&s.idp.issuer)));
    assert_eq!(
        Browser::default()
            .get(&s.url("/_doorward/login?provider=nope"))
            .await
            .status,
        400
    );
    // The route pins its provider in the login redirect, and the whole
    // login works through the pinned one.
    let page = Browser::default().get(&s.url("/pinned")).await;
    assert!(
        page.header("location").is_some_and(|l| l.contains("provider=test-idp")),
        "{:?}",
        page.headers
    );
    let landed = Browser::default().login(&s.url("/pinned"), "alice", &s.idp).await;
    assert_eq!(landed.status, 200);
    assert_eq!(landed.url.as_str(), s.url("/pinned"));
}

#[tokio::test]
async fn an_unreachable_idp_gives_new_logins_an_error_page_while_sessions_go_on() {
    let mut s = Scenario::start(Options::default()).await;
    let mut browser = s.logged_in("alice", "/").await;
    s.idp.stop();
    assert_eq!(
        browser.get(&s.url("/still-works")).await.status,
        200,
        "existing sessions go on"
    );

    // A doorward that never reached the IdP cannot start a login.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = s.config.replace(&s.idp.issuer, "http://127.0.0.1:9");
    let fresh = Proxy::start_on(&config, listener).await;
    let mut newcomer = Browser::default();
    let page = newcomer.navigate(&format!("http://{}/x", fresh.addr)).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("temporarily unavailable"));
    assert!(!page.body.contains("127.0.0.1:9"), "no internals on the page");

    // Readiness reports the IdP but stays ready: sessions do not need it.
    let ready = Browser::default()
        .get(&format!("http://{}/_doorward/readyz", fresh.addr))
        .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("store: ok"), "{}", ready.body);
    assert!(
        ready.body.contains("provider test-idp: metadata not fetched yet"),
        "{}",
        ready.body
    );
    let ready = Browser::default().get(&s.url("/_doorward/readyz")).await;
    assert!(
        ready.body.contains("provider test-idp: metadata loaded"),
        "{}",
        ready.body
    );
}
