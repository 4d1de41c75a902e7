//! Live config reload of the real binary: SIGHUP (and the opt-in file
//! watch) re-read the config; routes, group mapping and signing keys
//! change under load without a failed request or a lost session; a broken
//! config is refused and the running one keeps serving; a restart-only
//! change is named and not applied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::child::{ChildDoorward, ChildLog};
use crate::faults_store::Relay;
use crate::idp::{Browser, Idp};
use crate::scenario::SESSION_KEY;
use crate::support::{get, Upstream};

/// What a test's config varies.
struct Knobs<'a> {
    upstream: &'a str,
    /// `[identity.groups] mapping`, as TOML.
    mapping: &'a str,
    /// `[headers] signing_keys`, paths.
    signing_keys: &'a [&'a std::path::Path],
    /// Extra `[server]` lines.
    server: &'a str,
}

/// A config for the real binary: JSON log, port 0, SQLite in `store`, the
/// test IdP behind `base` when `issuer` is set.
fn config(base: &str, issuer: Option<&str>, store: &std::path::Path, k: &Knobs<'_>) -> String {
    let keys: Vec<String> = k
        .signing_keys
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let provider = issuer.map_or(String::new(), |issuer| {
        format!(
            "[[provider]]\nname = \"test-idp\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"doorward\"\n\
             client_secret = \"{}\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n",
            crate::idp::CLIENT_SECRET
        )
    });
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{base}"
{server}
[log]
format = "json"
level = "info"
[store]
url = "sqlite://{store}/doorward.db"
[session]
keys = ["{SESSION_KEY}"]
[headers]
signing_keys = [{keys}]
[identity.groups]
mapping = {mapping}
{provider}
[[route]]
name = "app"
upstream = "{upstream}"
public = ["/public/"]
"#,
        server = k.server,
        store = store.display(),
        keys = keys.join(", "),
        mapping = k.mapping,
        upstream = k.upstream,
    )
}

/// Replaces the config file's content in place (same path, as an operator
/// editing it would).
fn rewrite(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("rewrite config");
}

/// The value of one series in the child's metrics, 0 when absent.
async fn metric(child: &ChildDoorward, series: &str) -> f64 {
    let (status, _, body) = get(child.addr, "/_doorward/metrics", &[]).await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// One client on one kept-alive connection, requesting in a loop until
/// `stop`; every status goes to `results` (a transport error as 0).
async fn client(
    addr: std::net::SocketAddr,
    cookie: String,
    stop: Arc<AtomicBool>,
    results: mpsc::UnboundedSender<u16>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let req = Request::builder()
            .uri(format!("/load/{i}"))
            .header("host", "app.test")
            .header("cookie", &cookie)
            .body(Empty::<Bytes>::new())
            .expect("request");
        let status = match sender.send_request(req).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        };
        if results.send(status).is_err() || status == 0 {
            return;
        }
    }
}

/// Waits for `n` more results, asserting each is a 200.
async fn expect_ok(results: &mut mpsc::UnboundedReceiver<u16>, n: usize, when: &str) {
    for _ in 0..n {
        let status = results.recv().await.expect("clients are running");
        assert_eq!(status, 200, "a request failed {when}");
    }
}

/// The test IdP, a relay for `public_url`, a store, and alice logged in
/// through the child doorward.
struct LoggedIn {
    relay: Relay,
    idp: Idp,
    store: tempfile::TempDir,
    cookie: String,
}

async fn idp_and_relay() -> (Relay, Idp, tempfile::TempDir) {
    let relay = Relay::start().await;
    let clients = serde_json::json!([Idp::doorward_client(
        &relay.base,
        &format!("{}/_doorward/backchannel-logout", relay.base)
    )]);
    // Tokens that outlive the test: no refresh re-derives a session, so a
    // new mapping can only reach a live session through the reload.
    let ttl = [("OIDC_ACCESS_TOKEN_TTL", "3600"), ("OIDC_ID_TOKEN_TTL", "3600")];
    let idp = Idp::start(&clients, &Idp::accounts(), &ttl);
    (relay, idp, tempfile::tempdir().expect("store dir"))
}

async fn log_in(child: &ChildDoorward, relay: Relay, idp: Idp, store: tempfile::TempDir) -> LoggedIn {
    relay.point_at(child.addr);
    let mut alice = Browser::default();
    let page = alice
        .login(&format!("{}/private/start", relay.base), "alice", &idp)
        .await;
    assert_eq!(page.status, 200, "login ended at {} with {}", page.url, page.body);
    let cookie = format!("doorward={}", alice.cookie("doorward").expect("session cookie").value);
    LoggedIn {
        relay,
        idp,
        store,
        cookie,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_and_a_group_mapping_change_under_load_without_a_failed_request() {
    let (relay, idp, store) = idp_and_relay().await;
    let (old_app, new_app) = (Upstream::start().await, Upstream::start().await);
    let before = Knobs {
        upstream: &old_app.url(),
        mapping: "{}",
        signing_keys: &[],
        server: "",
    };
    let file = crate::support::write_config(&config(&relay.base, Some(&idp.issuer), store.path(), &before));
    let (child, mut log) = ChildDoorward::serve_logged(file.path());
    let s = log_in(&child, relay, idp, store).await;
    assert_eq!(old_app.last().header("x-forwarded-groups"), Some("engineers,staff"));

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut results) = mpsc::unbounded_channel();
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(client(child.addr, s.cookie.clone(), Arc::clone(&stop), tx.clone())))
        .collect();
    drop(tx);
    expect_ok(&mut results, 100, "before the reload").await;
    let misses = r#"doorward_session_cache_lookups_total{result="miss"}"#;
    let misses_before = metric(&child, misses).await;

    let after = Knobs {
        upstream: &new_app.url(),
        mapping: r#"{ engineers = ["developers"] }"#,
        ..before
    };
    rewrite(
        file.path(),
        &config(&s.relay.base, Some(&s.idp.issuer), s.store.path(), &after),
    );
    child.signal("HUP");
    let line = log.wait_for(&["config reloaded"]).await;
    assert!(line.contains("route[0].upstream"), "{line}");
    assert!(line.contains("identity.groups.mapping"), "{line}");
    assert!(line.contains("SIGHUP"), "{line}");
    // The clients go on through and past the swap on their connections.
    expect_ok(&mut results, 200, "across the reload").await;
    stop.store(true, Ordering::Relaxed);
    while let Some(status) = results.recv().await {
        assert_eq!(status, 200, "a request failed while stopping");
    }
    for c in clients {
        c.await.expect("client");
    }

    let served_before = old_app.requests().len();
    let (status, _, _) = get(child.addr, "/after", &[("cookie", &s.cookie)]).await;
    assert_eq!(status, 200, "alice's session survived the reload");
    assert_eq!(old_app.requests().len(), served_before, "the old upstream gets no more");
    let seen = new_app.last();
    assert_eq!(seen.target, "/after");
    assert_eq!(seen.header("x-forwarded-groups"), Some("developers,staff"));
    assert_eq!(
        metric(&child, r#"doorward_config_reloads_total{outcome="success"}"#).await,
        1.0
    );
    let misses_after = metric(&child, misses).await;
    assert!(
        misses_after > misses_before,
        "the reload dropped the cached session, so it was read from the store again \
         (misses {misses_before} -> {misses_after})"
    );
}

/// The `kid` and the signing key's of an assertion.
fn assertion_kid(assertion: &str) -> String {
    let header = assertion.split('.').next().expect("JWT header");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    header["kid"].as_str().expect("kid").to_string()
}

async fn jwks_kids(child: &ChildDoorward) -> Vec<String> {
    let (status, _, body) = get(child.addr, "/_doorward/jwks.json", &[]).await;
    assert_eq!(status, 200);
    let jwks: Value = serde_json::from_slice(&body).expect("JWKS JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

fn key_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let pem = doorward::assertion::keys::SigningKey::generate().to_pem().expect("PEM");
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write key");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_rotation_publishes_both_keys_then_signs_with_the_new_one() {
    let (relay, idp, store) = idp_and_relay().await;
    let app = Upstream::start().await;
    let keys = tempfile::tempdir().expect("key dir");
    let (old, new) = (key_file(keys.path(), "old.pem"), key_file(keys.path(), "new.pem"));
    let upstream = app.url();
    let knobs = |signing_keys: &[&std::path::Path]| -> String {
        let k = Knobs {
            upstream: &upstream,
            mapping: "{}",
            signing_keys,
            server: "",
        };
        config(&relay.base, Some(&idp.issuer), store.path(), &k)
    };
    let file = crate::support::write_config(&knobs(&[&old]));
    let (child, mut log) = ChildDoorward::serve_logged(file.path());
    let started = jwks_kids(&child).await;
    assert_eq!(started.len(), 1);
    let old_kid = started[0].clone();

    // Step one, as config.example.toml says: the new key second, published
    // for verifiers to fetch, not yet signing.
    rewrite(file.path(), &knobs(&[&old, &new]));
    child.signal("HUP");
    log.wait_for(&["config reloaded", "headers.signing_keys"]).await;
    let both = jwks_kids(&child).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], old_kid);
    let new_kid = both[1].clone();

    let s = log_in(&child, relay, idp, store).await;
    let assertion = app
        .last()
        .header("x-doorward-assertion")
        .expect("assertion")
        .to_string();
    assert_eq!(assertion_kid(&assertion), old_kid);

    // Step two: the new key first. It signs; the old one is still published.
    let k = Knobs {
        upstream: &upstream,
        mapping: "{}",
        signing_keys: &[&new, &old],
        server: "",
    };
    rewrite(
        file.path(),
        &config(&s.relay.base, Some(&s.idp.issuer), s.store.path(), &k),
    );
    child.signal("HUP");
    log.wait_for(&["config reloaded", "headers.signing_keys"]).await;
    let kids = jwks_kids(&child).await;
    assert_eq!(kids, [new_kid.clone(), old_kid.clone()]);
    let (status, _, _) = get(child.addr, "/after-rotation", &[("cookie", &s.cookie)]).await;
    assert_eq!(status, 200, "the session survived the rotation");
    let assertion = app
        .last()
        .header("x-doorward-assertion")
        .expect("assertion")
        .to_string();
    assert_eq!(
        assertion_kid(&assertion),
        new_kid,
        "new assertions are signed by the new key"
    );
}

/// A doorward without providers, for reloads that need no login.
fn plain(upstream: &str, server: &str) -> String {
    let store = std::env::temp_dir();
    config(
        "http://127.0.0.1",
        None,
        &store,
        &Knobs {
            upstream,
            mapping: "{}",
            signing_keys: &[],
            server,
        },
    )
}

async fn serve_plain(text: &str) -> (ChildDoorward, ChildLog, tempfile::NamedTempFile) {
    let file = crate::support::write_config(text);
    let (child, log) = ChildDoorward::serve_logged(file.path());
    (child, log, file)
}

#[tokio::test]
async fn a_broken_config_is_refused_and_the_running_one_keeps_serving() {
    let app = Upstream::start().await;
    let (child, mut log, file) = serve_plain(&plain(&app.url(), "")).await;
    let good = plain(&app.url(), "");
    // Line 23 of the file: a route whose upstream is not a URL.
    let broken = good.replace(&format!("upstream = \"{}\"", app.url()), "upstream = \"not a url\"");
    assert_ne!(broken, good);
    rewrite(file.path(), &broken);
    child.signal("HUP");
    let line = log.wait_for(&["config reload refused"]).await;
    let path = file.path().display().to_string();
    assert!(line.contains(&path), "names the file: {line}");
    assert!(line.contains("route[0].upstream"), "names the key: {line}");
    assert_eq!(
        metric(&child, r#"doorward_config_reloads_total{outcome="refused"}"#).await,
        1.0
    );

    // A secret in the wrong shape is refused without being logged: serde
    // quotes the value it refused.
    let secret = "leaked-secret-0123456789abcdef0123456789";
    rewrite(
        file.path(),
        &good.replace(&format!("keys = [\"{SESSION_KEY}\"]"), &format!("keys = \"{secret}\"")),
    );
    child.signal("HUP");
    let line = log.wait_for(&["config reload refused", "session.keys"]).await;
    assert!(!line.contains(secret), "{line}");
    assert!(line.contains("[redacted]"), "{line}");

    let (status, _, _) = get(child.addr, "/still", &[]).await;
    assert_eq!(status, 401, "the running config (a protected route) still serves");
    let (status, _, _) = get(child.addr, "/public/still", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(app.last().target, "/public/still");
}

#[tokio::test]
async fn with_the_file_watch_on_an_edit_is_applied_without_a_signal() {
    let (old_app, new_app) = (Upstream::start().await, Upstream::start().await);
    let (child, mut log, file) = serve_plain(&plain(&old_app.url(), "reload_watch = true")).await;
    rewrite(file.path(), &plain(&new_app.url(), "reload_watch = true"));
    let line = log.wait_for(&["config reloaded"]).await;
    assert!(line.contains("file watch"), "{line}");
    let (status, _, _) = get(child.addr, "/public/watched", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(new_app.last().target, "/public/watched");
}

#[tokio::test]
async fn a_restart_only_change_is_named_and_not_applied() {
    let app = Upstream::start().await;
    let (child, mut log, file) = serve_plain(&plain(&app.url(), "")).await;
    // Another listen address and another worker count: neither can change
    // in a running process.
    let text = plain(&app.url(), "worker_threads = 3").replace("127.0.0.1:0", "127.0.0.1:1");
    rewrite(file.path(), &text);
    child.signal("HUP");
    let line = log.wait_for(&["need a restart"]).await;
    assert!(line.contains("server.listen"), "{line}");
    assert!(line.contains("server.worker_threads"), "{line}");
    log.wait_for(&["config reload: nothing to apply"]).await;
    let (status, _, _) = get(child.addr, "/public/same-place", &[]).await;
    assert_eq!(status, 200, "still listening where it started");
    assert_eq!(
        metric(&child, r#"doorward_config_reloads_total{outcome="success"}"#).await,
        0.0
    );
}
