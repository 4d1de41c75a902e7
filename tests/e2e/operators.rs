//! Operators end access by hand (issue 20): `doorward sessions list|revoke`
//! (the real binary, against the store a running doorward uses: SQLite
//! beside one process, PostgreSQL under two replicas) and the admin API on
//! its own listener. A revoked session's next request is sent to log in,
//! on every replica, within a second.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::idp::{raw_request, Browser, Page};
use crate::postgres::TestPostgres;
use crate::replicas::Pair;
use crate::scenario::{Options, Scenario};
use crate::support::write_config;

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef0123456789";

/// Tokens that outlive the test: no request refreshes them (a refresh reads
/// the store and would find the revocation without any notice), so the
/// running doorward answers from its cache until it is told.
fn cached_sessions() -> Options {
    Options {
        idp_env: vec![("OIDC_ACCESS_TOKEN_TTL", "3600"), ("OIDC_ID_TOKEN_TTL", "3600")],
        ..Options::default()
    }
}

/// Runs `doorward --config CONFIG sessions ARGS…`: (success, stdout, stderr).
/// On a blocking thread: an in-process doorward on the test's runtime
/// must go on running meanwhile (one of its store transactions may hold
/// the row the command waits for; blocking the runtime froze both).
pub(crate) async fn cli(config: &str, args: &[&str]) -> (bool, String, String) {
    let file = write_config(config);
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorward"))
            .arg("--config")
            .arg(file.path())
            .arg("sessions")
            .args(&args)
            .env("RUST_LOG", "info")
            .output();
        drop(file);
        out
    })
    .await
    .expect("the command's thread")
    .expect("run doorward sessions");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The app's answer to `cookie` at `url`, as a browser asks (a login
/// redirect when the session is gone).
async fn with_cookie(url: &str, cookie: &str) -> Page {
    raw_request(
        "GET",
        &url::Url::parse(url).expect("url"),
        &[("cookie", cookie)],
        Bytes::new(),
    )
    .await
}

fn cookie_of(browser: &Browser) -> String {
    format!("doorward={}", browser.cookie("doorward").expect("session cookie").value)
}

fn is_login_redirect(page: &Page) -> bool {
    page.status == 302 && page.header("location").is_some_and(|l| l.contains("/_doorward/login"))
}

/// Polls `url` with `cookie` until it is sent to log in, within `deadline`
/// of now: true if it was.
async fn refused_within(url: &str, cookie: &str, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if is_login_redirect(&with_cookie(url, cookie).await) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What every line of a listing may say: names, times, no secrets.
const LINE_KEYS: [&str; 9] = [
    "session",
    "provider",
    "subject",
    "email",
    "preferred_username",
    "directory",
    "created_at",
    "last_seen",
    "expires_at",
];

fn assert_no_secrets(lines: &[Value], text: &str, cookie: &str) {
    for line in lines {
        let mut keys: Vec<&str> = line
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = LINE_KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{line}");
        assert_eq!(line["session"].as_str().map(str::len), Some(16), "a key prefix only");
    }
    let value = cookie.trim_start_matches("doorward=");
    assert!(!text.contains(value), "no cookie in the listing");
    for word in ["token", "claims", "groups"] {
        assert!(!text.contains(word), "no {word} in the listing: {text}");
    }
}

#[tokio::test]
async fn the_cli_ends_a_users_session_in_a_running_doorward_on_sqlite() {
    let s = Scenario::start(cached_sessions()).await;
    let mut alice = s.logged_in("alice", "/").await;
    let mut bob = s.logged_in("bob", "/").await;
    assert_eq!(alice.get(&s.url("/cached")).await.status, 200);
    assert_eq!(bob.get(&s.url("/cached")).await.status, 200);
    let (alice_cookie, bob_cookie) = (cookie_of(&alice), cookie_of(&bob));

    let (ok, out, err) = cli(&s.config, &["list", "--json"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(lines.len(), 2, "{out}");
    assert_no_secrets(&lines, &out, &alice_cookie);
    let (ok, text, err) = cli(&s.config, &["list", "--user", "alice@example.com"]).await;
    assert!(ok, "{err}");
    assert_eq!(text.lines().count(), 2, "a header and alice's line: {text}");
    assert!(
        text.contains("alice@example.com") && !text.contains("bob@example.com"),
        "{text}"
    );

    let (ok, out, err) = cli(&s.config, &["revoke", "--user", "alice@example.com"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("revoked 1 session\n"), "{out}");
    assert!(
        out.contains("sessions revoked by hand") && out.contains("cli"),
        "logged: {out}"
    );
    assert!(
        refused_within(&s.url("/after"), &alice_cookie, Duration::from_secs(1)).await,
        "the running doorward forgets alice's session within a second"
    );
    assert_eq!(
        with_cookie(&s.url("/bob"), &bob_cookie).await.status,
        200,
        "bob is untouched"
    );

    let (ok, _, err) = cli(&s.config, &["revoke"]).await;
    assert!(!ok && err.contains("name the sessions to end"), "{err}");
}

#[tokio::test]
async fn the_cli_revokes_by_provider_only_that_providers_sessions() {
    let s = Scenario::start(cached_sessions()).await;
    let mut alice = s.logged_in("alice", "/").await;
    assert_eq!(alice.get(&s.url("/cached")).await.status, 200);
    let cookie = cookie_of(&alice);
    // The same user from another provider is another person.
    let (ok, out, err) = cli(
        &s.config,
        &["revoke", "--user", "alice@example.com", "--provider", "other-idp"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("revoked 0 sessions"), "{out}");
    let (ok, out, err) = cli(&s.config, &["revoke", "--provider", "other-idp"]).await;
    assert!(ok && out.contains("revoked 0 sessions"), "{out}{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(with_cookie(&s.url("/kept"), &cookie).await.status, 200);

    let (ok, out, err) = cli(&s.config, &["revoke", "--provider", "test-idp"]).await;
    assert!(ok && out.contains("revoked 1 session\n"), "{out}{err}");
    assert!(refused_within(&s.url("/after"), &cookie, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn the_cli_ends_a_session_on_both_replicas_of_a_postgres_pair() {
    let pg = TestPostgres::shared();
    let pair = Pair::start(pg, cached_sessions()).await;
    let mut alice = pair.s.logged_in("alice", "/").await;
    assert_eq!(alice.get(&pair.on_b("/warm")).await.status, 200);
    assert_eq!(alice.get(&pair.s.url("/warm")).await.status, 200);
    let cookie = cookie_of(&alice);
    let (ok, out, err) = cli(&pair.s.config, &["list", "--json"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let key = lines[0]["session"].as_str().expect("key prefix").to_string();

    let (ok, out, err) = cli(&pair.s.config, &["revoke", "--session", &key]).await;
    assert!(ok && out.contains("revoked 1 session\n"), "{out}{err}");
    let (on_a, on_b) = (pair.s.url("/after"), pair.on_b("/after"));
    let (a, b) = tokio::join!(
        refused_within(&on_a, &cookie, Duration::from_secs(1)),
        refused_within(&on_b, &cookie, Duration::from_secs(1)),
    );
    assert!(a && b, "replica a refuses: {a}, replica b refuses: {b}");
}

/// A request to the admin listener.
async fn admin(s: &Scenario, method: &str, path: &str, token: Option<&str>, body: &str) -> Page {
    let addr = s._proxy.admin_addr.expect("an admin listener");
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    raw_request(
        method,
        &url::Url::parse(&format!("http://{addr}{path}")).expect("url"),
        &headers,
        Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn the_admin_api_lists_and_revokes_only_with_its_token_and_only_on_its_listener() {
    let s = Scenario::start(Options {
        extra: format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n"),
        ..cached_sessions()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;
    let bob = s.logged_in("bob", "/").await;
    assert_eq!(alice.get(&s.url("/cached")).await.status, 200);
    let cookie = cookie_of(&alice);

    for token in [None, Some("wrong-token-0123456789abcdef0123456789")] {
        for (method, path) in [
            ("GET", "/sessions"),
            ("POST", "/sessions/revoke"),
            ("GET", "/elsewhere"),
        ] {
            let page = admin(&s, method, path, token, "{\"user\":\"alice@example.com\"}").await;
            assert_eq!(page.status, 401, "{method} {path} with {token:?}");
            assert!(page.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        }
    }
    assert_eq!(
        with_cookie(&s.url("/still"), &cookie).await.status,
        200,
        "nothing was revoked"
    );

    let list = admin(&s, "GET", "/sessions?user=alice%40example.com", Some(ADMIN_TOKEN), "").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let lines = list.json()["sessions"].as_array().expect("sessions").clone();
    assert_eq!(lines.len(), 1, "{}", list.body);
    assert_eq!(lines[0]["email"], "alice@example.com");
    assert_no_secrets(&lines, &list.body, &cookie);
    let all = admin(&s, "GET", "/sessions", Some(ADMIN_TOKEN), "").await;
    assert_eq!(all.json()["sessions"].as_array().map(Vec::len), Some(2));

    assert_eq!(admin(&s, "PUT", "/sessions", Some(ADMIN_TOKEN), "").await.status, 405);
    let get_revoke = admin(&s, "GET", "/sessions/revoke", Some(ADMIN_TOKEN), "").await;
    assert_eq!((get_revoke.status, get_revoke.header("allow")), (405, Some("POST")));
    let bad = admin(&s, "POST", "/sessions/revoke", Some(ADMIN_TOKEN), "{not json").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a JSON object")),
        "{}",
        bad.body
    );
    let unknown = admin(&s, "POST", "/sessions/revoke", Some(ADMIN_TOKEN), "{\"everyone\":true}").await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let empty = admin(&s, "POST", "/sessions/revoke", Some(ADMIN_TOKEN), "{}").await;
    assert_eq!(empty.status, 400, "never everyone by omission: {}", empty.body);

    // The admin paths are not on the main listener, token or not.
    for path in [
        "/_doorward/sessions",
        "/_doorward/admin/sessions",
        "/_doorward/sessions/revoke",
    ] {
        let page = raw_request(
            "POST",
            &url::Url::parse(&s.url(path)).expect("url"),
            &[
                ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("accept", "application/json"),
            ],
            Bytes::from("{\"user\":\"alice@example.com\"}"),
        )
        .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    assert_eq!(with_cookie(&s.url("/still"), &cookie).await.status, 200);

    let revoke = admin(
        &s,
        "POST",
        "/sessions/revoke",
        Some(ADMIN_TOKEN),
        "{\"user\":\"alice@example.com\",\"provider\":\"test-idp\"}",
    )
    .await;
    assert_eq!(
        (revoke.status, revoke.json()["revoked"].as_u64()),
        (200, Some(1)),
        "{}",
        revoke.body
    );
    // In process: the very next request.
    assert!(is_login_redirect(&with_cookie(&s.url("/after"), &cookie).await));
    assert_eq!(with_cookie(&s.url("/bob"), &cookie_of(&bob)).await.status, 200);
}
