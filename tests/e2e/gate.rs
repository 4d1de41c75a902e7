//! The admission gate holds on every way identity leaves doorward: a user
//! the login policy refuses gets no identity from forward-auth, userinfo,
//! debug, a protected path or a public one, whether they hold a session or
//! a bearer token; a route's login rules only ever narrow; and a refresh
//! after which the user is refused ends the session there and then.

use http::HeaderMap;
use serde_json::json;
use tokio::net::TcpListener;

use crate::idp::{raw_request, Page};
use crate::scenario::{api_client_tokens, Options, Scenario};
use crate::support::{LogCapture, Proxy, Seen};
use doorward::clock::Clock;

/// Every header doorward puts identity in (the defaults).
const IDENTITY_HEADERS: [&str; 9] = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-roles",
    "x-forwarded-role",
    "x-forwarded-orgs",
    "x-forwarded-idp",
    "x-doorward-assertion",
];

fn assert_no_identity(headers: &HeaderMap, what: &str) {
    for name in IDENTITY_HEADERS {
        assert!(headers.get(name).is_none(), "{what}: {name} in {headers:?}");
    }
}

fn assert_upstream_got_no_identity(seen: &Seen, what: &str) {
    for name in IDENTITY_HEADERS {
        let leaked = seen.headers_folding_to(name);
        assert!(leaked.is_empty(), "{what}: {name} reached the upstream: {leaked:?}");
    }
}

/// `GET base+path` as an API client holding `token`.
pub(crate) async fn with_bearer(base: &str, path: &str, token: &str) -> Page {
    let url = url::Url::parse(&format!("{base}{path}")).expect("url");
    let auth = format!("Bearer {token}");
    raw_request(
        "GET",
        &url,
        &[("authorization", &auth), ("accept", "application/json")],
        bytes::Bytes::new(),
    )
    .await
}

/// bob's session and bearer token, on doorward with and without a login
/// policy that refuses him.
#[tokio::test]
async fn a_user_the_login_policy_refuses_gets_no_identity_on_any_endpoint_or_path() {
    let s = Scenario::start(Options {
        // Long-lived tokens: no refresh gets in the way (a refresh would
        // end the refused session, which the next test covers).
        idp_env: vec![("OIDC_ACCESS_TOKEN_TTL", "3600"), ("OIDC_ID_TOKEN_TTL", "3600")],
        route: "bearer = true".into(),
        // bob would even qualify for the debug view.
        extra: "[identity]\ndebug_roles = [\"Marketing Team\"]\n\
                [identity.roles]\nfrom_groups = [\"Marketing Team\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    let mut bob = s.logged_in("bob", "/").await;
    let token = api_client_tokens(&s.idp, "bob").await["access_token"]
        .as_str()
        .expect("access token")
        .to_string();

    // Where the policy lets him in, both credentials carry his identity
    // everywhere: this is what must disappear below.
    let page = bob.get(&s.url("/_doorward/auth")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(bob.get(&s.url("/_doorward/debug")).await.status, 200);
    let page = with_bearer(&s.base, "/_doorward/auth?route=app", &token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(bob.get(&s.url("/public/x")).await.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));

    // The same store and keys under a policy that refuses him: a restart
    // with a stricter config, or another replica. His session and token
    // are still real; the gate must not vouch for them.
    let strict_config = format!("{}\n[identity.login]\nallowed_groups = [\"admins\"]\n", s.config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let strict = Proxy::start_on(&strict_config, listener).await;
    let base = format!("http://{}", strict.addr);
    let forwarded_before = s.upstream.requests().len();

    for (path, want) in [
        ("/_doorward/auth", 403),
        ("/_doorward/auth?route=app", 403),
        ("/_doorward/userinfo", 403),
        ("/_doorward/userinfo?route=app", 403),
        ("/_doorward/debug", 403),
        ("/private", 403),
    ] {
        let page = bob.get(&format!("{base}{path}")).await;
        assert_eq!(page.status, want, "session, {path}: {}", page.body);
        assert_no_identity(&page.headers, &format!("session, {path}"));
        if path == "/private" {
            // The access-denied page tells the browser's own user which
            // account was refused, in that one sentence and nowhere else.
            let sentence = "Your account <strong>bob@example.com</strong> is not allowed to use this app";
            assert!(page.body.contains(sentence), "session, {path}: {}", page.body);
            assert_eq!(page.body.matches("bob@example.com").count(), 1, "{}", page.body);
        } else {
            assert!(!page.body.contains("bob@example.com"), "session, {path}: {}", page.body);
        }
    }
    for (path, want) in [
        // Without a route, introspection takes no bearer tokens at all.
        ("/_doorward/auth", 401),
        ("/_doorward/auth?route=app", 403),
        ("/_doorward/userinfo", 401),
        ("/_doorward/userinfo?route=app", 403),
        ("/_doorward/debug", 401),
        ("/private", 403),
    ] {
        let page = with_bearer(&base, path, &token).await;
        assert_eq!(page.status, want, "bearer, {path}: {}", page.body);
        assert_no_identity(&page.headers, &format!("bearer, {path}"));
        assert!(!page.body.contains("bob@example.com"), "bearer, {path}: {}", page.body);
    }
    assert_eq!(
        s.upstream.requests().len(),
        forwarded_before,
        "nothing refused was forwarded"
    );

    // A public path still serves him, as anyone: no identity headers, no
    // assertion, and doorward's cookie kept from the upstream.
    let page = bob.get(&format!("{base}/public/session")).await;
    assert_eq!(page.status, 200);
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/public/session");
    assert_upstream_got_no_identity(&seen, "session on a public path");
    assert!(
        seen.header("cookie").is_none_or(|c| !c.contains("doorward=")),
        "{:?}",
        seen.header("cookie")
    );
    // (Public paths never read bearer tokens; it is refused all the same.)
    let page = with_bearer(&base, "/public/bearer", &token).await;
    assert_eq!(page.status, 200);
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/public/bearer");
    assert_upstream_got_no_identity(&seen, "bearer on a public path");
}

#[tokio::test]
async fn a_route_login_rule_narrows_who_gets_in_and_never_widens_it() {
    let s = Scenario::start(Options {
        idp_env: vec![("OIDC_ACCESS_TOKEN_TTL", "3600"), ("OIDC_ID_TOKEN_TTL", "3600")],
        extra: "[[route]]\nname = \"strict\"\npath_prefix = \"/strict\"\nupstream = \"@UPSTREAM@\"\n\
                public = [\"/strict/open/\"]\nbearer = true\n\
                [route.identity.login]\nallowed_emails = [\"alice@example.com\"]\n\n\
                [identity.login]\nallowed_groups = [\"Marketing Team\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    // bob passes the global rule, not the route's.
    let mut bob = s.logged_in("bob", "/").await;
    assert_eq!(bob.get(&s.url("/_doorward/auth")).await.status, 200);
    let before = s.upstream.requests().len();
    for path in [
        "/strict/x",
        "/_doorward/auth?route=strict",
        "/_doorward/userinfo?route=strict",
    ] {
        let page = bob.get(&s.url(path)).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert_no_identity(&page.headers, path);
    }
    assert_eq!(s.upstream.requests().len(), before);
    assert_eq!(bob.get(&s.url("/strict/open/x")).await.status, 200);
    assert_upstream_got_no_identity(&s.upstream.last(), "bob on the strict route's public path");

    // alice is named by the route but refused globally: the route cannot
    // let her in (her bearer token is the only credential she can get).
    let token = api_client_tokens(&s.idp, "alice").await["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    for path in ["/strict/x", "/_doorward/auth?route=strict"] {
        let page = with_bearer(&s.base, path, &token).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert_no_identity(&page.headers, path);
    }
}

#[tokio::test]
async fn a_refresh_after_which_the_user_is_refused_ends_the_session_at_once() {
    // Captures the in-process doorward's log (same thread, see LogCapture).
    let log = LogCapture::start("doorward=info");
    let clock = Clock::manual_from_now();
    let s = Scenario::start(Options {
        // The access token is due for a refresh `refresh_before` (60 s)
        // ahead of these 600 s; the ID token outlives the clock jump.
        idp_env: vec![("OIDC_ACCESS_TOKEN_TTL", "600"), ("OIDC_ID_TOKEN_TTL", "3600")],
        extra: "[identity.login]\nallowed_groups = [\"engineers\"]\n".into(),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;
    let cookie = format!("doorward={}", alice.cookie("doorward").expect("session").value);

    // The IdP drops her from the only allowed group.
    let without_engineers = json!({"email": "alice@example.com", "email_verified": true,
                                   "preferred_username": "alice", "groups": ["staff"]});
    s.idp.set_account("alice", &without_engineers).await;
    // Until the token is due, the session keeps what the last refresh said.
    assert_eq!(alice.get(&s.url("/before")).await.status, 200);

    clock.advance(600 - 60 + 1);
    let before = s.upstream.requests().len();
    let page = alice.get(&s.url("/after?x=1")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.header("location"), Some("/_doorward/login?rd=%2Fafter%3Fx%3D1"));
    assert_eq!(s.upstream.requests().len(), before, "nothing was forwarded");
    let logged = log.text();
    let line = logged
        .lines()
        .find(|l| l.contains("session ended: after a refresh the user may no longer log in"))
        .unwrap_or_else(|| panic!("the log does not say why the session ended:\n{logged}"));
    assert!(line.contains("WARN") && line.contains("alice@example.com"), "{line}");
    assert!(line.contains("reason="), "{line}");

    // Ended, not just refused once: an API client gets 401, and even with
    // the group back at the IdP the old cookie is no session any more.
    let url = url::Url::parse(&s.url("/api")).expect("url");
    let headers = [("cookie", cookie.as_str()), ("accept", "application/json")];
    assert_eq!(
        raw_request("GET", &url, &headers, bytes::Bytes::new()).await.status,
        401
    );
    let with_engineers = json!({"email": "alice@example.com", "email_verified": true,
                                "preferred_username": "alice", "groups": ["engineers"]});
    s.idp.set_account("alice", &with_engineers).await;
    assert_eq!(alice.get(&s.url("/again")).await.status, 302);
}
