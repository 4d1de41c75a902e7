//! Sessions: an opaque id in a sealed cookie, the record in the durable
//! store, and a bounded moka cache of the compact form the request path
//! needs.
//!
//! The session layer does not know what callers do with a session: what
//! it caches beside the record (`V`, the identity views) is made by a
//! function its owner passes in.

pub mod cookies;
pub mod id;
pub mod keys;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderMap;
use moka::future::Cache;

use crate::clock::Clock;
use crate::identity::Claims;
use crate::login::{merged_claims, LoginResult, PassedTokens, Tokens};
use crate::metrics::SessionCacheMetrics;
use crate::store::directory::{facts_for, DirectoryFacts};
use crate::store::{Invalidation, SessionKey, SessionRecord, SessionStore, Store, StoreError};
use cookies::CookieSettings;
pub use id::SessionId;
use keys::KeyRing;

/// What the cache may weigh a session by: roughly its bytes in memory.
pub trait Footprint {
    fn footprint(&self) -> usize;
}

/// Where a session came from, for deriving its views.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub provider: &'a str,
    pub issuer: &'a str,
}

/// Makes the cached views of a session from its claims and what the
/// directory says of its user.
pub type DeriveFn<V> = Arc<dyn Fn(&Claims, Origin<'_>, Option<&DirectoryFacts>) -> V + Send + Sync>;

/// The compact, cached form of a session: what a request needs.
pub struct LiveSession<V> {
    pub key: SessionKey,
    pub provider: String,
    /// The provider's issuer when the session began.
    pub issuer: String,
    /// What the owner derived from the claims (identity views).
    pub views: V,
    pub expires_at: i64,
    pub token_expires_at: Option<i64>,
    pub has_refresh_token: bool,
    /// Which version of the record's tokens this copy holds (each write
    /// encrypts them under a fresh nonce), to see a refresh made elsewhere.
    tokens_stamp: [u8; 12],
    last_seen: AtomicI64,
    persisted_seen: AtomicI64,
    /// Held while this session's tokens are refreshed (single flight).
    pub refresh_lock: tokio::sync::Mutex<()>,
    /// Only when tokens are passed upstream.
    pub passed_tokens: Option<Arc<PassedTokens>>,
}

impl<V> std::fmt::Debug for LiveSession<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("key", &self.key)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl<V> LiveSession<V> {
    fn from_record(record: &SessionRecord, views: V, tokens: &Tokens, pass_tokens: bool) -> Self {
        // A session ends with the IdP's own session when it said when.
        let expires_at = match record.idp_expires_at {
            Some(idp_end) => record.expires_at.min(idp_end),
            None => record.expires_at,
        };
        Self {
            key: record.key,
            provider: record.provider.clone(),
            issuer: record.issuer.clone(),
            views,
            expires_at,
            token_expires_at: record.token_expires_at,
            has_refresh_token: tokens.refresh_token.is_some(),
            tokens_stamp: tokens_stamp(record),
            last_seen: AtomicI64::new(record.last_seen),
            persisted_seen: AtomicI64::new(record.last_seen),
            refresh_lock: tokio::sync::Mutex::new(()),
            passed_tokens: pass_tokens.then(|| Arc::new(PassedTokens::from_tokens(tokens))),
        }
    }

    pub fn last_seen(&self) -> i64 {
        self.last_seen.load(Ordering::Relaxed)
    }

    /// Whether `record` holds newer tokens than this copy (a refresh made
    /// by another request or replica since this copy was loaded).
    pub fn is_older_than(&self, record: &SessionRecord) -> bool {
        tokens_stamp(record) != self.tokens_stamp
    }
}

/// The nonce of a record's encrypted tokens: new at every write.
fn tokens_stamp(record: &SessionRecord) -> [u8; 12] {
    record
        .tokens
        .get(1..13)
        .and_then(|nonce| nonce.try_into().ok())
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub cookie_name: String,
    pub cookie: CookieSettings,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Sessions kept in memory at most.
    pub cache_capacity: u64,
    /// Bytes the cached sessions may take at most.
    pub cache_max_bytes: u64,
    /// Keep tokens in memory to pass them upstream.
    pub pass_tokens: bool,
}

/// Sessions for the whole process.
pub struct SessionManager<V> {
    store: Store,
    /// Swapped by a config reload (a new identity mapping), like `keys`:
    /// the sessions themselves, the store and the cache stay.
    derive: ArcSwap<DeriveFn<V>>,
    cache: Cache<SessionKey, Arc<LiveSession<V>>>,
    /// Keys revoked lately: a cache fill that read the record before the
    /// revocation must not put it back (it would resurrect the session).
    revoked: moka::sync::Cache<SessionKey, ()>,
    /// Bumped whenever the cache is flushed or a session changed elsewhere;
    /// a fill that started before is not cached.
    epoch: AtomicU64,
    /// When the store last failed to answer: for a moment after, lookups
    /// do not wait on it again (a down database would otherwise cost every
    /// request the pool's acquire timeout).
    store_failed_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// On while revocation notices from other replicas may be missed (the
    /// notice channel is down): every lookup then asks the store, and a
    /// cached copy is used only while the store cannot be reached at all
    /// (then no replica can record a revocation in it either).
    read_through: AtomicBool,
    keys: ArcSwap<KeyRing>,
    clock: Clock,
    pub settings: SessionSettings,
    /// Lookups answered by the cache, and those that read the store.
    cache_metrics: SessionCacheMetrics,
}

/// How often `last_seen` is written back: idle timeouts are coarse, and the
/// request path must not write to the database on every request.
const TOUCH_EVERY: i64 = 60;

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

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The views of a session: its claims, and the directory's facts about
    /// its user when it has a match key (read every time the views are
    /// made, so a directory change shows on the next fill).
    async fn derive(&self, claims: &Claims, record: &SessionRecord) -> Result<V, StoreError> {
        let facts = match &record.match_key {
            Some(key) => facts_for(&self.store, key).await?,
            None => None,
        };
        let origin = Origin {
            provider: &record.provider,
            issuer: &record.issuer,
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
        let id = SessionId::new_random();
        let key = id.key();
        let now = self.clock.now();
        let absolute = i64::try_from(self.settings.absolute_timeout.as_secs()).unwrap_or(i64::MAX);
        let record = SessionRecord {
            key,
            provider: login.provider,
            issuer: login.issuer,
            subject: login.subject,
            sid: login.idp_session,
            logout_hint: login.logout_hint,
            idp_expires_at: login.idp_session_end,
            claims: login.claims.to_string(),
            tokens: self.seal_tokens(&key, &login.tokens),
            token_expires_at: login.tokens.expires_at,
            created_at: now,
            expires_at: now.saturating_add(absolute),
            last_seen: now,
            last_refresh: now,
            match_key,
        };
        let views = self.derive(&login.merged, &record).await?;
        self.store.insert(&record).await?;
        let live = Arc::new(LiveSession::from_record(
            &record,
            views,
            &login.tokens,
            self.settings.pass_tokens,
        ));
        self.cache.insert(key, Arc::clone(&live)).await;
        let sealed = self.keys.load().seal_cookie(&self.settings.cookie_name, id.as_str());
        Ok((sealed, live))
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

    pub async fn get(&self, key: &SessionKey) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let cached = self.cache.get(key).await;
        let live = if !self.read_through.load(Ordering::Acquire) {
            match cached {
                Some(live) => {
                    self.cache_metrics.hit();
                    live
                }
                None => {
                    self.cache_metrics.miss();
                    match self.load(key).await? {
                        Some(live) => live,
                        None => return Ok(None),
                    }
                }
            }
        } else {
            // Read-through: every lookup asks the store.
            self.cache_metrics.miss();
            let loaded = if self.store_recently_failed() {
                Err(StoreError::RecentlyDown)
            } else {
                self.load(key).await
            };
            match loaded {
                Ok(Some(live)) => live,
                Ok(None) => {
                    self.cache.invalidate(key).await;
                    return Ok(None);
                }
                // The store is down for everyone: the last copy seen stands
                // (a database blip must not log everyone out).
                Err(e) => {
                    self.note_store_failure(&e);
                    match cached {
                        Some(live) => {
                            tracing::debug!(error = %e, "store unreachable; using the cached session");
                            live
                        }
                        None => return Err(e),
                    }
                }
            }
        };
        let now = self.clock.now();
        let idle = i64::try_from(self.settings.idle_timeout.as_secs()).unwrap_or(i64::MAX);
        if now >= live.expires_at || now.saturating_sub(live.last_seen()) > idle {
            self.delete(key).await?;
            return Ok(None);
        }
        live.last_seen.store(now, Ordering::Relaxed);
        if now - live.persisted_seen.load(Ordering::Relaxed) >= TOUCH_EVERY {
            live.persisted_seen.store(now, Ordering::Relaxed);
            let store = self.store.clone();
            let key = *key;
            tokio::spawn(async move {
                if let Err(e) = store.touch(&key, now).await {
                    tracing::warn!(error = %e, "could not record session activity");
                }
            });
        }
        Ok(Some(live))
    }

    /// Reads a session from the store into the cache, unless it was revoked
    /// (or the cache flushed) while the read was under way.
    async fn load(&self, key: &SessionKey) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let Some(record) = self.store.get(key).await? else {
            return Ok(None);
        };
        if self.revoked.contains_key(key) {
            return Ok(None);
        }
        // The identity is recomputed from the stored claims, so a changed
        // mapping applies to existing sessions too.
        let views = self.derive(&merged_claims(&record.claims), &record).await?;
        // Tokens that no longer open (a removed key) mean no refresh.
        let tokens = self.open_tokens(&record).unwrap_or_default();
        let live = Arc::new(LiveSession::from_record(
            &record,
            views,
            &tokens,
            self.settings.pass_tokens,
        ));
        if self.epoch.load(Ordering::Acquire) == epoch && !self.revoked.contains_key(key) {
            self.cache.insert(*key, Arc::clone(&live)).await;
        }
        Ok(Some(live))
    }

    /// The cached form, if cached (no store read).
    pub async fn cached(&self, key: &SessionKey) -> Option<Arc<LiveSession<V>>> {
        self.cache.get(key).await
    }

    /// The full record and its decrypted tokens (for refresh and logout).
    pub async fn record(&self, key: &SessionKey) -> Result<Option<(SessionRecord, Tokens)>, StoreError> {
        let Some(record) = self.store.get(key).await? else {
            return Ok(None);
        };
        let tokens = self.open_tokens(&record).unwrap_or_default();
        Ok(Some((record, tokens)))
    }

    /// Replaces a session's identity and tokens after a refresh.
    pub async fn replace(
        &self,
        key: &SessionKey,
        login: LoginResult,
    ) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let Some(mut record) = self.store.get(key).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        record.sid = login.idp_session.or(record.sid);
        record.claims = login.claims.to_string();
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
        if !self.revoked.contains_key(key) {
            self.cache.insert(*key, Arc::clone(&live)).await;
        }
        Ok(Some(live))
    }

    /// Drops a session's cached form because its record changed elsewhere
    /// (the next request reads it again); racing fills are not cached.
    pub async fn invalidate(&self, key: &SessionKey) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key).await;
    }

    /// Forgets a session in this process (cache and tombstone), without
    /// touching the store: for revocations another replica made.
    pub async fn forget(&self, key: &SessionKey) {
        self.revoked.insert(*key, ());
        self.cache.invalidate(key).await;
    }

    /// Drops every cached session: the next requests read through.
    pub fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
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

    /// Sessions in this process's cache (for metrics). The cache counts
    /// lazily: its pending bookkeeping runs first, so the number is current
    /// (a scrape's cost, never a request's).
    pub async fn cached_count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }

    fn seal_tokens(&self, key: &SessionKey, tokens: &Tokens) -> Vec<u8> {
        let plain = serde_json::to_vec(tokens).unwrap_or_default();
        self.keys.load().encrypt(&plain, &key.0)
    }

    fn open_tokens(&self, record: &SessionRecord) -> Option<Tokens> {
        let plain = self.keys.load().decrypt(&record.tokens, &record.key.0)?;
        serde_json::from_slice(&plain).ok()
    }

    /// Follows the store's revocation notices (a shared store), for the
    /// manager's life.
    pub fn follow_store(self: &Arc<Self>) {
        let Some(mut notices) = self.store.subscribe() else {
            return;
        };
        let manager = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                match notice {
                    Invalidation::Revoked(key) => manager.forget(&key).await,
                    Invalidation::Changed(key) => manager.invalidate(&key).await,
                    Invalidation::Lost => manager.read_through.store(true, Ordering::Release),
                    Invalidation::Restored => {
                        // Notices may have been missed while the channel
                        // was down: nothing cached before is trusted.
                        manager.flush();
                        manager.read_through.store(false, Ordering::Release);
                    }
                }
            }
        });
    }

    /// Whether the store failed within the last moment (callers that can
    /// do without it, like a refresh, wait for it to come back).
    pub fn store_recently_failed(&self) -> bool {
        const BACK_OFF: std::time::Duration = std::time::Duration::from_secs(2);
        self.store_failed_at
            .lock()
            .map(|at| at.is_some_and(|at| at.elapsed() < BACK_OFF))
            .unwrap_or(false)
    }

    /// Records that the store did not answer (not for "recently down",
    /// which would extend the pause for ever).
    pub fn note_store_failure(&self, error: &StoreError) {
        if !matches!(error, StoreError::RecentlyDown) {
            if let Ok(mut at) = self.store_failed_at.lock() {
                *at = Some(std::time::Instant::now());
            }
        }
    }

    /// Whether every lookup asks the store (while notices from other
    /// replicas could be missed).
    pub fn reading_through(&self) -> bool {
        self.read_through.load(Ordering::Acquire)
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
