//! Sessions under stress: a cookie header that is not UTF-8 neither hides
//! the session nor smuggles doorward's cookie to the upstream; a loop of
//! login starts cannot pile up cookies in a browser; and a store that
//! fails is a 503 with Retry-After, never a logout.

use tokio::net::TcpListener;

use crate::idp::raw_request;
use crate::scenario::{Options, Scenario};
use crate::support::{raw_bytes, Proxy};

#[tokio::test]
async fn a_non_utf8_cookie_beside_the_session_hides_nothing_and_smuggles_nothing() {
    let s = Scenario::start(Options::default()).await;
    let alice = s.logged_in("alice", "/").await;
    let session = alice.cookie("doorward").expect("session cookie").value.clone();
    let addr = s._proxy.addr;

    let one_header = [
        &b"GET /private/one HTTP/1.1\r\nHost: app.test\r\nCookie: junk=\xff\xfe; doorward="[..],
        session.as_bytes(),
        b"; theme=\xc3dark\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    let two_headers = [
        &b"GET /private/two HTTP/1.1\r\nHost: app.test\r\nCookie: junk=\x80\r\nCookie: doorward="[..],
        session.as_bytes(),
        b"; theme=dark\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    for (what, request) in [("one Cookie header", one_header), ("two Cookie headers", two_headers)] {
        let response = raw_bytes(addr, &request).await;
        assert_eq!(
            response.status, 200,
            "{what}: the session is recognised: {}",
            response.head
        );
        let seen = s.upstream.last();
        assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"), "{what}");
        let cookies = seen.headers_folding_to("cookie");
        assert_eq!(cookies.len(), 1, "{what}: one Cookie line upstream: {cookies:?}");
        let line = &cookies[0].1;
        assert!(
            !line.contains("doorward"),
            "{what}: doorward's cookie reached the upstream: {line}"
        );
        assert!(!line.contains(&session[..16]), "{what}: {line}");
        assert!(
            line.contains("junk=") && line.contains("theme="),
            "{what}: the app's cookies are kept: {line}"
        );
    }
}

#[tokio::test]
async fn a_loop_of_login_starts_never_leaves_more_than_three_pending_login_cookies() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = crate::idp::Browser::default();
    let mut last = None;
    let mut last_rd = String::new();
    for i in 0..20 {
        // Long return-to targets make each pending-login cookie big.
        last_rd = format!("/{}/{i}", "p".repeat(1500));
        let encoded: String = form_urlencoded::byte_serialize(last_rd.as_bytes()).collect();
        let page = browser.get(&s.url(&format!("/_doorward/login?rd={encoded}"))).await;
        assert_eq!(page.status, 302, "start {i}: {}", page.body);
        // Each answer sets exactly one new pending login (and clears some).
        let live_set = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with("doorward-login-") && !v.contains("Max-Age=0"))
            .count();
        assert_eq!(live_set, 1, "start {i}: {:?}", page.headers);
        // What the browser keeps, counting Max-Age=0 as deleted, as a
        // browser does.
        let pending: Vec<_> = browser
            .cookies
            .iter()
            .filter(|c| c.name.starts_with("doorward-login-"))
            .collect();
        assert!(
            pending.len() <= 3,
            "after {} starts the browser holds {} pending-login cookies",
            i + 1,
            pending.len()
        );
        for cookie in &pending {
            assert!(cookie.value.len() < 4096, "a cookie browsers would refuse");
        }
        last = Some(page);
    }
    assert_eq!(
        browser
            .cookies
            .iter()
            .filter(|c| c.name.starts_with("doorward-login-"))
            .count(),
        3
    );

    // The newest login is one of those kept: it finishes and lands where
    // it was asked to.
    let mut page = browser.follow(last.expect("a start")).await;
    for _ in 0..4 {
        if page.url.as_str().starts_with(&s.idp.issuer) && page.body.contains("<form") {
            page = browser.submit(&page, "alice", &[]).await;
        }
    }
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    assert_eq!(page.url.as_str(), s.url(&last_rd));
    assert!(browser.cookie("doorward").is_some());
}

#[tokio::test]
async fn a_failing_store_is_a_503_with_retry_after_never_a_logout() {
    let s = Scenario::start(Options {
        // No refresh during the test: a refresh reads the store too.
        idp_env: vec![("OIDC_ACCESS_TOKEN_TTL", "3600"), ("OIDC_ID_TOKEN_TTL", "3600")],
        ..Options::default()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;
    let cookie = format!("doorward={}", alice.cookie("doorward").expect("session").value);
    // A second doorward on the same store and keys (a restart, another
    // replica): its cache is cold, so it must read the store.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cold = Proxy::start_on(&s.config, listener).await;
    let cold = format!("http://{}", cold.addr);

    // Break the store for real: with the sessions table renamed away,
    // every SQLite read of a session fails ("no such table"), on a store
    // that is otherwise open and answering (as during a botched migration
    // or a failover). Reversible, so the session can come back.
    let db_url = format!("sqlite://{}", s.store_path().display());
    let db = sqlx::SqlitePool::connect(&db_url).await.expect("open the store");
    sqlx::query("ALTER TABLE sessions RENAME TO sessions_away")
        .execute(&db)
        .await
        .expect("rename");

    let page = alice.get(&format!("{cold}/private")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(page.header("retry-after"), Some("5"));
    assert!(
        page.header("set-cookie").is_none(),
        "no cookie is cleared: {:?}",
        page.headers
    );
    assert!(!page.body.contains("sessions"), "no internals: {}", page.body);
    let url = url::Url::parse(&format!("{cold}/api")).expect("url");
    let api = raw_request(
        "GET",
        &url,
        &[("cookie", cookie.as_str()), ("accept", "application/json")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(api.status, 503, "{}", api.body);
    assert_eq!(api.json()["status"], 503);
    assert_eq!(api.header("retry-after"), Some("5"));
    let auth = alice.get(&format!("{cold}/_doorward/auth")).await;
    assert_eq!(auth.status, 503, "forward-auth: {}", auth.body);
    assert!(auth.header("x-forwarded-user").is_none());
    // A public path goes on, as anonymous.
    let before = s.upstream.requests().len();
    assert_eq!(alice.get(&format!("{cold}/public/x")).await.status, 200);
    assert_eq!(s.upstream.requests().len(), before + 1);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), None);

    // Where the session is cached, it goes on meanwhile.
    let page = alice.get(&s.url("/cached")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));

    // The store is back: the session was never deleted.
    sqlx::query("ALTER TABLE sessions_away RENAME TO sessions")
        .execute(&db)
        .await
        .expect("rename back");
    db.close().await;
    let page = alice.get(&format!("{cold}/private")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
}
