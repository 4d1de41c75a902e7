//! A session created or replaced while the cache is flushed (a reload, a
//! directory change) is not cached with views derived before the flush:
//! the next request derives them again, as a fill by `load` would.

use std::sync::atomic::AtomicBool;
use std::sync::{OnceLock, Weak};

use super::*;
use crate::clock::Clock;
use crate::keyring::KeyRing;
use crate::login::LoginResult;
use crate::secret::SecretString;
use crate::store::Store;
use crate::store::StoreOptions;

pub(super) struct Views;

impl Footprint for Views {
    fn footprint(&self) -> usize {
        0
    }
}

pub(super) type Manager = SessionManager<Views>;

/// A manager whose derive function flushes the cache (as a reload racing
/// the derive would) while `flush_during_derive` is on.
async fn manager(flush_during_derive: Arc<AtomicBool>) -> Arc<Manager> {
    manager_on(flush_during_derive, Clock::manual(1_000)).await
}

/// The same, on `clock` (idle timeout 600 s, lifetime 3,600 s).
pub(super) async fn manager_on(flush_during_derive: Arc<AtomicBool>, clock: Clock) -> Arc<Manager> {
    let store = Store::open("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("store");
    let keys = KeyRing::new(&[SecretString::new("k".repeat(48))]).expect("keys");
    let settings = SessionSettings {
        cookie_name: "doorward".into(),
        cookie: CookieSettings {
            secure: false,
            domain: None,
        },
        idle_timeout: Duration::from_secs(600),
        absolute_timeout: Duration::from_secs(3600),
        cache_capacity: 100,
        cache_max_bytes: 1 << 20,
        pass_tokens: false,
    };
    let this: Arc<OnceLock<Weak<Manager>>> = Arc::new(OnceLock::new());
    let during = Arc::clone(&this);
    let derive: DeriveFn<Views> = Arc::new(move |_, _, _| {
        if flush_during_derive.load(Ordering::SeqCst) {
            if let Some(manager) = during.get().and_then(Weak::upgrade) {
                manager.flush();
            }
        }
        Views
    });
    let manager = Arc::new(Manager::new(store, keys, settings, derive, clock));
    this.set(Arc::downgrade(&manager)).expect("set once");
    manager
}

pub(super) fn login() -> LoginResult {
    LoginResult {
        provider: "idp".into(),
        issuer: "https://idp.example".into(),
        subject: "alice".into(),
        idp_session: None,
        logout_hint: None,
        idp_session_end: None,
        merged: Claims::new(),
        claims: serde_json::json!({}),
        tokens: Tokens::default(),
        authentication: Default::default(),
    }
}

#[tokio::test]
async fn a_session_created_during_a_flush_is_not_cached() {
    let flushing = Arc::new(AtomicBool::new(false));
    let sessions = manager(Arc::clone(&flushing)).await;
    let (_, quiet) = sessions.create(login(), None).await.expect("create");
    assert!(sessions.cached(&quiet.key).await.is_some(), "cached when nothing raced");

    flushing.store(true, Ordering::SeqCst);
    let (_, raced) = sessions.create(login(), None).await.expect("create");
    assert!(sessions.cached(&raced.key).await.is_none(), "a flush raced the derive");
    assert!(
        sessions.get(&raced.key).await.expect("store").is_some(),
        "the session itself stands"
    );
}

#[tokio::test]
async fn a_session_replaced_during_a_flush_is_not_cached() {
    let flushing = Arc::new(AtomicBool::new(false));
    let sessions = manager(Arc::clone(&flushing)).await;
    let (_, live) = sessions.create(login(), None).await.expect("create");
    let replaced = sessions
        .replace(&live.key, login(), Replacement::Refresh)
        .await
        .expect("replace");
    assert!(replaced.is_some());
    assert!(sessions.cached(&live.key).await.is_some(), "cached when nothing raced");

    flushing.store(true, Ordering::SeqCst);
    let replaced = sessions
        .replace(&live.key, login(), Replacement::Refresh)
        .await
        .expect("replace");
    assert!(replaced.is_some());
    assert!(sessions.cached(&live.key).await.is_none(), "a flush raced the derive");
}
