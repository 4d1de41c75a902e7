//! The session manager: starts a session for a login, finds the one a
//! request's cookie names, replaces its tokens after a refresh, and ends
//! it; tokens are sealed under the key ring. The cache behind `get` and its
//! coherence are in `coherence`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderMap;
use moka::future::Cache;

use super::{cookies, DeriveFn, Footprint, LiveSession, Origin, Replacement, SessionId, SessionSettings};
use crate::access::Generation;
use crate::clock::Clock;
use crate::identity::Claims;
use crate::keyring::KeyRing;
use crate::login::{Authentication, LoginResult, Tokens};
use crate::metrics::SessionCacheMetrics;
use crate::snapshot_member::SnapshotMember;
use crate::store::directory::facts_for;
use crate::store::{SessionKey, SessionRecord, SessionStore, Store, StoreError};

/// Sessions for the whole process.
pub struct SessionManager<V> {
    pub(super) store: Store,
    /// Swapped by a config reload (a new identity mapping), like `keys`:
    /// the sessions themselves, the store and the cache stay.
    pub(super) derive: ArcSwap<DeriveFn<V>>,
    pub(super) cache: Cache<SessionKey, Arc<LiveSession<V>>>,
    /// Keys revoked lately: a cache fill that read the record before the
    /// revocation must not put it back (it would resurrect the session).
    pub(super) revoked: moka::sync::Cache<SessionKey, ()>,
    /// Bumped whenever the cache is flushed or a session changed elsewhere;
    /// a fill that started before is not cached.
    pub(super) epoch: AtomicU64,
    /// When the store last failed to answer: for a moment after, lookups
    /// do not wait on it again (a down database would otherwise cost every
    /// request the pool's acquire timeout).
    pub(super) store_failed_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// On while revocation notices from other replicas may be missed (the
    /// notice channel is down): every lookup then asks the store, and a
    /// store that does not answer is a 503, never a cached copy (fail
    /// closed: the copy may be one another replica revoked).
    pub(super) read_through: AtomicBool,
    pub(super) keys: ArcSwap<KeyRing>,
    pub(super) clock: Clock,
    pub settings: SessionSettings,
    /// Lookups answered by the cache, and those that read the store.
    pub(super) cache_metrics: SessionCacheMetrics,
    /// Bumped whenever this process learns that a session (or anything a
    /// session's identity is derived from) changed.
    pub(super) generation: Generation,
}

/// How long a revocation is remembered against racing cache fills: far
/// longer than any store read takes.
const TOMBSTONE_TTL: Duration = Duration::from_secs(120);

impl<V> SessionManager<V>
where
    V: Footprint + Send + Sync + 'static,
{
    pub fn new(store: Store, keys: KeyRing, settings: SessionSettings, derive: DeriveFn<V>, clock: Clock) -> Self {
        // Every entry weighs at least bytes/capacity, so the cache holds at
        // most `cache_capacity` sessions and at most `cache_max_bytes`.
        let floor = (settings.cache_max_bytes / settings.cache_capacity.max(1)).max(1);
        let cache = Cache::builder()
            .max_capacity(settings.cache_max_bytes)
            .weigher(move |_key, live: &Arc<LiveSession<V>>| {
                let bytes = (std::mem::size_of::<LiveSession<V>>() + live.views.footprint()) as u64;
                u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
            })
            .time_to_idle(settings.idle_timeout)
            .build();
        // A shared store tells of revocations only once listening.
        let read_through = AtomicBool::new(store.is_shared());
        Self {
            store,
            derive: ArcSwap::from_pointee(derive),
            cache,
            revoked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TOMBSTONE_TTL)
                .build(),
            epoch: AtomicU64::new(0),
            read_through,
            store_failed_at: std::sync::Mutex::new(None),
            keys: ArcSwap::from_pointee(keys),
            clock,
            settings,
            cache_metrics: SessionCacheMetrics::default(),
            generation: Generation::new(),
        }
    }

    /// Counts cache hits and misses in `metrics` (the process registry's).
    pub fn with_cache_metrics(mut self, metrics: SessionCacheMetrics) -> Self {
        self.cache_metrics = metrics;
        self
    }

    /// The key ring in use now (a reload may replace it).
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.load_full()
    }

    /// A config reload: new keys and a new identity mapping. Every cached
    /// session is dropped, so the next request of each re-derives its views
    /// (and assertion) from the stored claims under the new mapping; no
    /// session ends.
    pub fn reconfigure(&self, keys: KeyRing, derive: DeriveFn<V>) {
        self.keys.store(Arc::new(keys));
        self.derive.store(Arc::new(derive));
        self.flush();
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The access generation of this process (the manager outlives
    /// reloads, and so does it).
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The views of a session: its claims, and the directory's facts about
    /// its user when it has a match key (read every time the views are
    /// made, so a directory change shows on the next fill).
    pub(super) async fn derive(&self, claims: &Claims, record: &SessionRecord) -> Result<V, StoreError> {
        let facts = match &record.match_key {
            Some(key) => facts_for(&self.store, key).await?,
            None => None,
        };
        let posture = crate::access::Posture::of_snapshot(&record.claims);
        let authentication = Authentication::of_snapshot(&record.claims);
        let origin = Origin {
            provider: &record.provider,
            issuer: &record.issuer,
            posture: &posture,
            authentication: &authentication,
        };
        let derive = self.derive.load_full();
        Ok(derive(claims, origin, facts.as_ref()))
    }

    /// Starts a session for a login: always a new id (no fixation). Returns
    /// the sealed cookie value.
    /// `match_key` ties the session to a directory user (SCIM), if any.
    pub async fn create(
        &self,
        login: LoginResult,
        match_key: Option<String>,
    ) -> Result<(String, Arc<LiveSession<V>>), StoreError> {
        let derived = self.derive_login(&login, match_key.as_deref()).await?;
        self.create_derived(login, match_key, derived).await
    }

    /// The session a request's cookie names. Tampered, foreign, expired or
    /// idle sessions are `Ok(None)`; a store that does not answer is an
    /// error (a database blip must not log everyone out).
    pub async fn from_request(&self, headers: &HeaderMap) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let Some(sealed) = cookies::find(headers, &self.settings.cookie_name) else {
            return Ok(None);
        };
        let Some(id) = self.keys.load().open_cookie(&self.settings.cookie_name, sealed) else {
            return Ok(None);
        };
        match SessionId::key_of(&id) {
            Some(key) => self.get(&key).await,
            None => Ok(None),
        }
    }

    /// The full record and its decrypted tokens (for refresh and logout).
    pub async fn record(&self, key: &SessionKey) -> Result<Option<(SessionRecord, Tokens)>, StoreError> {
        let Some(record) = self.store.get(key).await? else {
            return Ok(None);
        };
        let tokens = self.open_tokens(&record).unwrap_or_default();
        Ok(Some((record, tokens)))
    }

    /// Replaces a session's identity and tokens after a refresh, or after a
    /// step-up login of the same user (which also raises its
    /// authentication); the session keeps its id and lifetime.
    pub async fn replace(
        &self,
        key: &SessionKey,
        login: LoginResult,
        how: Replacement,
    ) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let Some(mut record) = self.store.get(key).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        record.sid = login.idp_session.or(record.sid);
        // What shared signals said since the login, and how the login was
        // made, outlive a refresh; a step-up is a new login.
        let fresh = crate::access::Posture::carried_over(&record.claims, login.claims.clone());
        record.claims = match how {
            Replacement::Refresh => Authentication::carried_over(&record.claims, fresh),
            Replacement::StepUp => {
                let mut fresh = fresh;
                login.authentication.written_into(&mut fresh);
                fresh
            }
        }
        .to_string();
        record.tokens = self.seal_tokens(key, &login.tokens);
        record.token_expires_at = login.tokens.expires_at;
        record.last_refresh = now;
        record.last_seen = now;
        if !self.store.update(&record).await? {
            return Ok(None);
        }
        let views = self.derive(&login.merged, &record).await?;
        let live = Arc::new(LiveSession::from_record(
            &record,
            views,
            &login.tokens,
            self.settings.pass_tokens,
        ));
        self.cache_if_current(key, &live, epoch).await;
        // A refresh may change what the session is admitted to.
        self.generation.bump();
        Ok(Some(live))
    }

    pub async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.forget(key).await;
        self.store.delete(key).await?;
        Ok(())
    }

    /// Ends every session of an IdP session or subject (back-channel logout).
    pub async fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let keys = self.store.delete_matching(issuer, subject, sid).await?;
        for key in &keys {
            self.forget(key).await;
        }
        Ok(keys.len())
    }

    pub(super) fn seal_tokens(&self, key: &SessionKey, tokens: &Tokens) -> Vec<u8> {
        let plain = serde_json::to_vec(tokens).unwrap_or_default();
        self.keys.load().encrypt(&plain, &key.0)
    }

    pub(super) fn open_tokens(&self, record: &SessionRecord) -> Option<Tokens> {
        let plain = self.keys.load().decrypt(&record.tokens, &record.key.0)?;
        serde_json::from_slice(&plain).ok()
    }

    /// Removes expired sessions now and then.
    pub fn spawn_janitor(self: &Arc<Self>) {
        let manager = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                match manager.store.purge_expired(manager.clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
                }
            }
        });
    }
}
