//! No secret reaches the log or the audit trail: a full login, refresh, bearer-token use,
//! logout and back-channel logout with doorward at `trace` and everything
//! else at `debug`, every line of both streams captured, then searched for each secret the
//! test can get hold of (configured secrets, cookies, session ids and keys,
//! PKCE verifier, nonce, state, code, CSRF token, every token).
//!
//! Its own test binary: the capture is the process-wide subscriber (a
//! binary has one), so it sees every thread: doorward's tasks on a
//! multi-threaded runtime and SQLite's worker threads alike.

#[path = "../e2e/idp.rs"]
mod idp;
#[path = "../e2e/scenario.rs"]
mod scenario;
#[path = "../e2e/support.rs"]
mod support;

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

use doorward::audit::sink::{Destination, Sink};
use doorward::audit::{AuditLayer, Selection};
use doorward::keyring::KeyRing;
use doorward::secret::SecretString;
use doorward::session::SessionId;
use doorward::store::{SessionStore, SqliteStore};
use idp::{raw_request, Browser, Form, Page, CLIENT_SECRET};
use scenario::{api_call, api_client_tokens, Options, Scenario, SESSION_KEY};

/// Secrets found along the way: what each is, and its value.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, value: &str) {
        assert!(value.len() >= 8, "too short to search for: {value:?}");
        self.0.push((what.into(), value.to_string()));
    }

    /// A token, and for a JWT also its signature on its own (with the
    /// header and payload, which are not secret, it is the token).
    fn add_token(&mut self, what: &str, token: &str) {
        self.add(what, token);
        if let Some(signature) = token.split('.').nth(2) {
            self.add(format!("{what} signature"), signature);
        }
    }
}

fn keys() -> KeyRing {
    KeyRing::new(&[SecretString::new(SESSION_KEY.into())]).expect("ring")
}

/// What a stream wrote.
type Captured = Arc<Mutex<Vec<u8>>>;

#[derive(Clone)]
struct Buffer(Captured);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Collects every log line, from every thread, as JSON (span fields too),
/// and the audit trail apart, as `serve` splits them: (log, audit trail).
fn capture_everything() -> (Captured, Captured) {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Buffer(Arc::clone(&buffer));
    let log = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_filter(
            tracing_subscriber::EnvFilter::new("debug,doorward=trace")
                .and(filter_fn(|metadata| !doorward::audit::is_audit(metadata))),
        );
    let trail = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink::open(Destination::Writer(Box::new(Buffer(Arc::clone(&trail))))).expect("sink");
    let audit = AuditLayer::new(Arc::new(sink), Selection::all()).with_filter(filter_fn(doorward::audit::is_audit));
    let subscriber = tracing_subscriber::registry().with(log).with(audit);
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this binary");
    (buffer, trail)
}

/// The session behind a browser's cookie: cookie, id and key; then the
/// tokens its store record holds right now.
async fn session_secrets(s: &Scenario, browser: &Browser, who: &str, secrets: &mut Secrets) {
    let cookie = browser.cookie("doorward").expect("session cookie").value.clone();
    secrets.add(format!("{who}'s session cookie"), &cookie);
    let id = keys().open_cookie("doorward", &cookie).expect("opens");
    secrets.add(format!("{who}'s session id"), &id);
    let key = SessionId::parse(&id).expect("an id").key();
    let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
    secrets.add(format!("{who}'s session key (hex)"), &hex);
    secrets.add(format!("{who}'s session key (base64)"), &URL_SAFE_NO_PAD.encode(key.0));
    record_tokens(s, &key, who, secrets).await;
}

async fn record_tokens(s: &Scenario, key: &doorward::store::SessionKey, who: &str, secrets: &mut Secrets) {
    let url = format!("sqlite://{}", s.store_path().display());
    let store = SqliteStore::open(&url).await.expect("open the store");
    let Some(record) = store.get(key).await.expect("read") else {
        return;
    };
    let plain = keys().decrypt(&record.tokens, &key.0).expect("tokens open");
    let tokens: Value = serde_json::from_slice(&plain).expect("json");
    for kind in ["access_token", "refresh_token", "id_token"] {
        if let Some(token) = tokens[kind].as_str() {
            secrets.add_token(&format!("{who}'s {kind}"), token);
        }
    }
}

/// Logs in as `user` by hand, step by step, keeping what passes by: the
/// pending login (state, nonce, PKCE verifier), the authorization code,
/// and the tokens of the login before the first request refreshes them.
async fn login(s: &Scenario, user: &str, secrets: &mut Secrets) -> Browser {
    let mut browser = Browser::default();
    let mut page = browser.get(&s.url("/_doorward/login?rd=%2Fhome")).await;
    let pending = browser
        .cookie_named_like("doorward-login-")
        .expect("pending login")
        .clone();
    secrets.add(format!("{user}'s pending-login cookie"), &pending.value);
    let opened: Value =
        serde_json::from_str(&keys().open_cookie(&pending.name, &pending.value).expect("opens")).expect("json");
    secrets.add(format!("{user}'s state"), opened["key"].as_str().expect("state"));
    secrets.add(
        format!("{user}'s nonce"),
        opened["state"]["nonce"].as_str().expect("nonce"),
    );
    secrets.add(
        format!("{user}'s PKCE verifier"),
        opened["state"]["pkce_verifier"].as_str().expect("verifier"),
    );
    for _ in 0..20 {
        if (300..400).contains(&page.status) {
            let next = page.location().expect("location");
            let callback = next.path() == "/_doorward/callback";
            if callback {
                let code = next.query_pairs().find(|(k, _)| k == "code").expect("code").1;
                secrets.add(format!("{user}'s authorization code"), &code);
            }
            page = browser.request("GET", &next, None).await;
            if callback {
                // Tokens as the login got them (the next request refreshes).
                session_secrets(s, &browser, user, secrets).await;
            }
        } else if page.url.as_str().starts_with(&s.idp.issuer) && page.body.contains("<form") {
            let form = Form::parse(&page.body).expect("form");
            let fields: Vec<(String, String)> = form
                .inputs
                .into_iter()
                .map(|(k, v)| match k.as_str() {
                    "login" => (k, user.to_string()),
                    "password" => (k, "any".to_string()),
                    _ => (k, v),
                })
                .collect();
            let action = page.url.join(&form.action).expect("action");
            page = browser.request("POST", &action, Some(&fields)).await;
        } else {
            break;
        }
    }
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    assert_eq!(page.url.as_str(), s.url("/home"));
    browser
}

async fn post_logout_token(s: &Scenario, form: &str) -> Page {
    let url = url::Url::parse(&s.url("/_doorward/backchannel-logout")).expect("url");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    raw_request("POST", &url, &headers, form.to_string().into()).await
}

fn logout_tokens(relay: &support::Upstream, seen: usize) -> Vec<String> {
    relay
        .requests()
        .into_iter()
        .skip(seen)
        .filter(|r| r.target == "/relay")
        .map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_through_login_refresh_bearer_logout_and_backchannel() {
    let (log, trail) = capture_everything();
    let relay = support::Upstream::start().await;
    let s = Scenario::start(Options {
        log_level: Some("debug,doorward=trace".into()),
        // Every request refreshes: refresh tokens are used and rotated.
        session: "refresh_before = \"1h\"".into(),
        route: "bearer = true".into(),
        backchannel: Some(format!("{}/relay", relay.url())),
        ..Options::default()
    })
    .await;
    let mut secrets = Secrets::default();
    secrets.add("the client secret", CLIENT_SECRET);
    secrets.add(
        "the client's Basic credentials",
        &STANDARD.encode(format!("doorward:{CLIENT_SECRET}")),
    );
    secrets.add("the session key", SESSION_KEY);

    // alice: login, two refreshing requests, then RP-initiated logout.
    let mut alice = login(&s, "alice", &mut secrets).await;
    for path in ["/one", "/two?q=1"] {
        assert_eq!(alice.get(&s.url(path)).await.status, 200);
        session_secrets(&s, &alice, "alice", &mut secrets).await;
    }
    let confirm = alice.get(&s.url("/_doorward/logout")).await;
    let csrf = Form::parse(&confirm.body)
        .expect("form")
        .inputs
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .expect("csrf")
        .1;
    secrets.add("alice's logout CSRF token", &csrf);
    let at_idp = alice.submit(&confirm, "alice", &[]).await;
    let done = alice.submit(&at_idp, "alice", &[("logout", "yes")]).await;
    assert_eq!(done.url.as_str(), s.url("/_doorward/logged-out"), "{}", done.body);

    // bob: login, a bearer token for the API, then logout at the IdP
    // (back-channel logout, relayed to doorward by the test).
    let mut bob = login(&s, "bob", &mut secrets).await;
    assert_eq!(bob.get(&s.url("/three")).await.status, 200);
    session_secrets(&s, &bob, "bob", &mut secrets).await;
    let api = api_client_tokens(&s.idp, "bob").await;
    for kind in ["access_token", "refresh_token", "id_token"] {
        secrets.add_token(&format!("bob's API {kind}"), api[kind].as_str().expect("token"));
    }
    let access = api["access_token"].as_str().expect("access token");
    assert_eq!(api_call(&s, "/api", access).await.status, 200);
    let mut forged = access.to_string();
    forged.push('x');
    assert_eq!(api_call(&s, "/api", &forged).await.status, 401);

    let relayed = logout_tokens(&relay, 0).len();
    let page = bob.navigate(&format!("{}/session/end", s.idp.issuer)).await;
    bob.submit(&page, "bob", &[("logout", "yes")]).await;
    let forms = logout_tokens(&relay, 0);
    assert!(forms.len() > relayed, "the IdP sent back-channel logouts");
    for form in &forms {
        let token = form.strip_prefix("logout_token=").expect("a logout token");
        secrets.add_token("a logout token", token);
        assert!(post_logout_token(&s, form).await.status < 500);
        assert_eq!(post_logout_token(&s, form).await.status, 400, "a replay");
    }
    assert_eq!(bob.get(&s.url("/after")).await.status, 302, "bob's session ended");
    drop(s);

    let text = String::from_utf8_lossy(&log.lock().expect("log")).into_owned();
    let audit = String::from_utf8_lossy(&trail.lock().expect("audit trail")).into_owned();
    // The audit trail is its own stream: one ECS object a line.
    for line in audit.lines() {
        let event: Value = serde_json::from_str(line).expect("an audit line is one JSON object");
        assert_eq!(event["ecs"]["version"], doorward::audit::ecs::ECS_VERSION, "{line}");
        assert!(
            !text.contains(event["event"]["id"].as_str().expect("an event id")),
            "in both streams: {line}"
        );
    }
    // The capture saw the server's own tasks (not just the test's thread):
    // the events every step logs are there.
    for event in [
        "\"login\"",
        "session refreshed",
        "\"logout\"",
        "back-channel logout",
        "bearer token refused",
        "doorward::access",
        "alice@example.com",
    ] {
        assert!(text.contains(event), "no {event} in the captured log:\n{text}");
    }
    let mut leaks = Vec::new();
    for (stream, text) in [("log", &text), ("audit trail", &audit)] {
        for (what, value) in &secrets.0 {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            if text.contains(value.as_str()) || text.contains(&encoded) {
                let line = text
                    .lines()
                    .find(|l| l.contains(value.as_str()) || l.contains(&encoded))
                    .unwrap_or_default();
                leaks.push(format!("{what} is in the {stream}: {line}"));
            }
        }
    }
    // LOG_SECRECY_DUMP=FILE keeps what was searched, for a look by hand.
    if let Ok(path) = std::env::var("LOG_SECRECY_DUMP") {
        std::fs::write(&path, &text).expect("dump");
        std::fs::write(format!("{path}.audit"), &audit).expect("dump");
    }
    let lines = text.lines().count();
    eprintln!(
        "searched {lines} log lines and {} audit lines for {} secrets: {} found",
        audit.lines().count(),
        secrets.0.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets in the log:\n{}", leaks.join("\n"));
}
