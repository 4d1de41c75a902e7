//! The receiver in process, without doorward's listeners: a [`Receiver`]
//! over a SQLite store in a temp dir, its session changes going to a
//! notifier that records them (and fails when told to), as `auth`'s would
//! end or re-derive sessions on every replica. The transmitter's metadata
//! and keys are served from loopback by a few lines of HTTP, so the
//! receiver reads them the way it does in production; time is a manual
//! clock.
//!
//! The store is seeded with sessions of two users of provider `corp` and
//! one user of provider `other` who has the same email (and subject) as
//! one of them: facts carry their source, so that one must never be
//! touched by `corp`'s transmitter.

mod receive;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::receiver::{Received, Receiver, Refused};
use super::transmitter::Transmitter;
use crate::assertion::keys::SigningKey;
use crate::clock::Clock;
use crate::config::signals::SignalsConfig;
use crate::directory::{DirectoryChange, DirectoryHandle, DirectoryNotifier, NotifyError, NotifyFuture};
use crate::fuzz_targets::mint;
use crate::idp_http::IdpHttp;
use crate::metrics::SignalMetrics;
use crate::store::{SessionKey, SessionRecord, SessionStore, Store, StoreOptions};

const NOW: i64 = 1_700_000_000;
const AUDIENCE: &str = "https://dw.test";
const CORP_ISSUER: &str = "https://idp.corp.test";
const OTHER_ISSUER: &str = "https://idp.other.test";
const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// Alice's two sessions at `corp`, Bob's one, and the `other` provider's
/// Alice (same subject, same email, even the same IdP session id).
const ALICE_1: SessionKey = SessionKey([1; 32]);
const ALICE_2: SessionKey = SessionKey([2; 32]);
const BOB: SessionKey = SessionKey([3; 32]);
const OTHER_ALICE: SessionKey = SessionKey([4; 32]);
const ALL: [SessionKey; 4] = [ALICE_1, ALICE_2, BOB, OTHER_ALICE];

/// Records the sessions it is told were ended or rewritten; fails while
/// `failing` is set (then records nothing).
#[derive(Default)]
struct Recorder {
    revoked: Mutex<Vec<SessionKey>>,
    changed: Mutex<Vec<SessionKey>>,
    /// How often an account's state change was reported.
    accounts: std::sync::atomic::AtomicU32,
    failing: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("the recorder was told to fail")]
struct Told;

impl Recorder {
    fn outcome(&self, into: &Mutex<Vec<SessionKey>>, keys: &[SessionKey]) -> NotifyFuture<'static> {
        let failing = self.failing.load(Ordering::SeqCst);
        if !failing {
            into.lock().expect("recorder lock").extend_from_slice(keys);
        }
        Box::pin(async move {
            match failing {
                true => Err(NotifyError::new(Told)),
                false => Ok(()),
            }
        })
    }

    fn revoked(&self) -> Vec<SessionKey> {
        std::mem::take(&mut *self.revoked.lock().expect("recorder lock"))
    }

    fn changed(&self) -> Vec<SessionKey> {
        std::mem::take(&mut *self.changed.lock().expect("recorder lock"))
    }
}

impl DirectoryNotifier for Recorder {
    fn apply<'a>(&'a self, _changes: &'a [DirectoryChange]) -> NotifyFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn sessions_revoked<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a> {
        self.outcome(&self.revoked, keys)
    }

    fn sessions_changed<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a> {
        self.outcome(&self.changed, keys)
    }

    fn accounts_changed(&self) -> NotifyFuture<'_> {
        self.accounts.fetch_add(1, Ordering::SeqCst);
        self.outcome(&self.changed, &[])
    }
}

/// A receiver bound to provider `corp`, its store, notifier and the
/// transmitter's signing key.
struct Fixture {
    receiver: Receiver,
    store: Store,
    notes: Arc<Recorder>,
    key: SigningKey,
    issuer: String,
    next_jti: std::sync::atomic::AtomicU32,
    _dir: tempfile::TempDir,
}

fn session(key: SessionKey, provider: &str, issuer: &str, subject: &str, email: &str, sid: &str) -> SessionRecord {
    SessionRecord {
        key,
        provider: provider.into(),
        issuer: issuer.into(),
        subject: subject.into(),
        sid: Some(sid.into()),
        logout_hint: None,
        idp_expires_at: None,
        claims: json!({"merged": {"sub": subject, "email": email, "department": "sales"}}).to_string(),
        tokens: Vec::new(),
        token_expires_at: None,
        created_at: NOW - 600,
        expires_at: NOW + 3600,
        last_seen: NOW - 600,
        last_refresh: NOW - 600,
        match_key: None,
    }
}

/// Serves the transmitter's metadata and JWKS on loopback until the test
/// ends; returns its issuer URL.
async fn serve_transmitter(jwks: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("address"));
    let metadata = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "delivery_methods_supported": ["urn:ietf:rfc:8935"],
    });
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let body = if line.starts_with("GET /jwks ") {
                &jwks
            } else {
                &metadata
            }
            .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    issuer
}

async fn fixture() -> Fixture {
    let key = SigningKey::generate();
    let issuer = serve_transmitter(json!({"keys": [key.public_jwk()]})).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/signals.db", dir.path().display());
    let store = Store::open(&url, &StoreOptions::default()).await.expect("store");
    for record in [
        session(ALICE_1, "corp", CORP_ISSUER, "alice", "alice@x.test", "sid-a1"),
        session(ALICE_2, "corp", CORP_ISSUER, "alice", "alice@x.test", "sid-a2"),
        session(BOB, "corp", CORP_ISSUER, "bob", "bob@x.test", "sid-b"),
        session(OTHER_ALICE, "other", OTHER_ISSUER, "alice", "alice@x.test", "sid-a1"),
    ] {
        store.insert(&record).await.expect("seed a session");
    }
    let notes = Arc::new(Recorder::default());
    let directory = DirectoryHandle::new(store.clone(), Clock::manual(NOW), notes.clone());
    let config: SignalsConfig = toml::from_str(&format!(
        "name = \"corp-tx\"\nissuer = \"{issuer}\"\nprovider = \"corp\"\naudience = \"{AUDIENCE}\"\nalgorithms = [\"EdDSA\"]\n"
    ))
    .expect("signals config");
    let tls = crate::tls::client_config(None).expect("tls");
    let transmitter = Arc::new(Transmitter::new(
        &issuer,
        IdpHttp::new(tls, std::time::Duration::from_secs(5)),
        false,
    ));
    transmitter
        .refresh()
        .await
        .expect("the transmitter's metadata and keys");
    let receiver = Receiver::new(
        &config,
        AUDIENCE.into(),
        format!("{AUDIENCE}/_doorward/ssf/corp-tx"),
        transmitter,
        directory,
        SignalMetrics::default(),
    );
    Fixture {
        receiver,
        store,
        notes,
        key,
        issuer,
        next_jti: std::sync::atomic::AtomicU32::new(1),
        _dir: dir,
    }
}

impl Fixture {
    /// A SET of `event` (a CAEP or RISC URI) about `subject`, which
    /// happened at `at`, signed by the transmitter, with a fresh jti.
    fn set(&self, event: &str, payload: Value, subject: Value, at: i64) -> String {
        let jti = format!("jti-{}", self.next_jti.fetch_add(1, Ordering::SeqCst));
        self.set_with_jti(&jti, event, payload, subject, at)
    }

    fn set_with_jti(&self, jti: &str, event: &str, mut payload: Value, subject: Value, at: i64) -> String {
        payload["event_timestamp"] = json!(at);
        let header = json!({"alg": "EdDSA", "typ": "secevent+jwt", "kid": self.key.kid()});
        let claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "iat": NOW - 1, "jti": jti,
            "sub_id": subject,
            "events": {event: payload},
        });
        mint(&header, claims.to_string().as_bytes(), &self.key)
    }

    async fn receive(&self, token: &str) -> Result<Received, Refused> {
        self.receiver.receive(token).await
    }

    /// Which of the seeded sessions are still in the store.
    async fn alive(&self) -> Vec<SessionKey> {
        let mut alive = Vec::new();
        for key in ALL {
            if self.store.get(&key).await.expect("get").is_some() {
                alive.push(key);
            }
        }
        alive
    }

    async fn snapshot(&self, key: &SessionKey) -> String {
        self.store
            .get(key)
            .await
            .expect("get")
            .map(|r| r.claims)
            .unwrap_or_default()
    }
}

fn iss_sub(iss: &str, sub: &str) -> Value {
    json!({"format": "iss_sub", "iss": iss, "sub": sub})
}

fn revoked() -> String {
    format!("{CAEP}session-revoked")
}

fn risc(event: &str) -> String {
    format!("{RISC}{event}")
}

fn caep(event: &str) -> String {
    format!("{CAEP}{event}")
}
