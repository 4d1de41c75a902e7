//! Store faults: a SIGKILL and restart of the real binary on the same
//! SQLite store loses no session (WAL durability); an SQLite store that
//! becomes unwritable fails new logins clearly and recovers without restart.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::child::ChildDoorward;
use crate::idp::{Browser, Idp};
use crate::scenario::SESSION_KEY;
use crate::support::{get, write_config, Upstream};

/// A TCP relay on a port-0 listener of its own, so `public_url` (and the
/// IdP's redirect URI) can name one address while the real binary, which
/// binds port 0 itself, comes and goes behind it.
pub(crate) struct Relay {
    pub(crate) base: String,
    target: Arc<Mutex<SocketAddr>>,
    task: JoinHandle<()>,
}

impl Relay {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let target = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 9))));
        let to = Arc::clone(&target);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let addr = *to.lock().expect("target");
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { base, target, task }
    }

    pub(crate) fn point_at(&self, addr: SocketAddr) {
        *self.target.lock().expect("target") = addr;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A config for the real binary: JSON log, port 0, SQLite in `store`.
fn binary_config(base: &str, issuer: &str, upstream: &str, store: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{base}"
[log]
format = "json"
level = "info"
[store]
url = "sqlite://{store}/doorward.db"
[session]
keys = ["{SESSION_KEY}"]
[[provider]]
name = "test-idp"
kind = "oidc"
issuer = "{issuer}"
client_id = "doorward"
client_secret = "{secret}"
scopes = ["openid", "email", "profile", "groups"]
[[route]]
name = "app"
upstream = "{upstream}"
public = ["/public/"]
"#,
        store = store.display(),
        secret = crate::idp::CLIENT_SECRET,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_and_restart_on_the_same_sqlite_store_loses_no_session() {
    let relay = Relay::start().await;
    let clients = serde_json::json!([Idp::doorward_client(
        &relay.base,
        &format!("{}/_doorward/backchannel-logout", relay.base)
    )]);
    let idp = Idp::start(&clients, &Idp::accounts(), &[]);
    let upstream = Upstream::start().await;
    let store = tempfile::tempdir().expect("store dir");
    let config = write_config(&binary_config(&relay.base, &idp.issuer, &upstream.url(), store.path()));

    let first = ChildDoorward::serve(config.path());
    relay.point_at(first.addr);
    let mut alice = Browser::default();
    let page = alice
        .login(&format!("{}/private/before", relay.base), "alice", &idp)
        .await;
    assert_eq!(page.status, 200, "login ended at {} with {}", page.url, page.body);
    assert_eq!(upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
    let cookie = format!("doorward={}", alice.cookie("doorward").expect("session cookie").value);

    // SIGKILL right after the login: no shutdown hook, no flush, no
    // checkpoint of the WAL. Whatever the login committed must be on disk.
    let killed = Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status()
        .expect("send SIGKILL");
    assert!(killed.success());
    let old = first.addr;
    drop(first); // reaps it
    assert!(
        tokio::net::TcpStream::connect(old).await.is_err(),
        "the first doorward is gone"
    );
    assert!(
        store.path().join("doorward.db-wal").exists(),
        "the kill left the WAL un-checkpointed, as a crash does"
    );

    // The same store and session key, a cold process: the cookie alone
    // must find the session in SQLite.
    let second = ChildDoorward::serve(config.path());
    let (status, headers, body) = get(second.addr, "/private/after", &[("cookie", &cookie)]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(headers.get("set-cookie").is_none(), "no cookie is cleared: {headers:?}");
    let seen = upstream.last();
    assert_eq!(seen.target, "/private/after");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    // And a cookie the store does not know is still refused, so the 200
    // above came from the stored session.
    let (status, _, _) = get(second.addr, "/private/forged", &[("cookie", "doorward=not-a-session")]).await;
    assert_ne!(status, 200);
}

/// Makes files immutable (`chattr +i`), which stops writes even by root and
/// even through descriptors already open; undone on drop, panics included.
/// The `-shm` file is left alone: SQLite maps it, and a write fault on an
/// immutable mapping is a SIGBUS, not an error SQLite can report.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: Vec<std::path::PathBuf>) -> Self {
        let ok = Command::new("chattr").arg("+i").args(&paths).status().expect("chattr");
        assert!(ok.success(), "chattr +i failed (needs ext4 and CAP_LINUX_IMMUTABLE)");
        Self(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

#[tokio::test]
async fn an_unwritable_sqlite_store_fails_a_login_clearly_and_recovers_without_restart() {
    use crate::scenario::{Options, Scenario};
    let log = crate::support::LogCapture::start("doorward=warn");
    let s = Scenario::start(Options::default()).await;
    let mut alice = s.logged_in("alice", "/").await;
    let db = s.store_path();
    let wal = db.with_extension("db-wal");
    let guard = Immutable::set(vec![db.clone(), wal]);

    // A new login needs a store write: it fails clearly.
    let mut bob = Browser::default();
    let page = bob.login(&s.url("/private/bob"), "bob", &s.idp).await;
    assert!(page.status >= 500, "bob's login: {} {}", page.status, page.body);
    assert!(
        bob.cookie("doorward").is_none(),
        "no session cookie without a stored session"
    );
    // Alice, whose cookie is fine, stays logged in.
    let page = alice.get(&s.url("/private/alice")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
    let text = log.text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("session store is unavailable") && l.contains("I/O error")),
        "no log line naming the store failure:\n{text}"
    );

    drop(guard);
    let page = bob.login(&s.url("/private/bob"), "bob", &s.idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
}
