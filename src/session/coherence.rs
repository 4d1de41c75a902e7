//! The session cache's coherence with the store and the other replicas:
//! lookups through the cache (or, while notices may be missed, through the
//! store), fills that a revocation or flush during the read must not
//! resurrect (epoch and tombstones), the store's revocation notices, and
//! the back-off while the store does not answer. Every change it learns
//! of bumps the access [`Generation`](crate::access::Generation).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Footprint, LiveSession, SessionManager};
use crate::login::merged_claims;
use crate::store::{Invalidation, SessionKey, SessionStore, StoreError};

/// How often `last_seen` is written back: idle timeouts are coarse, and the
/// request path must not write to the database on every request.
const TOUCH_EVERY: i64 = 60;

impl<V> SessionManager<V>
where
    V: Footprint + Send + Sync + 'static,
{
    pub async fn get(&self, key: &SessionKey) -> Result<Option<Arc<LiveSession<V>>>, StoreError> {
        let live = if !self.read_through.load(Ordering::Acquire) {
            match self.cache.get(key).await {
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
                // Fail closed: while notices may be missed, a cached copy
                // may be one another replica revoked, so it is not served.
                // The caller answers 503 (the cookie kept: never a logout).
                Err(e) => {
                    self.note_store_failure(&e);
                    return Err(e);
                }
            }
        };
        let now = self.clock.now();
        let idle = i64::try_from(self.settings.idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let expired = if now >= live.expires_at {
            Some("the session's lifetime ended")
        } else if now.saturating_sub(live.last_seen()) > idle {
            Some("the session was idle for longer than idle_timeout")
        } else {
            None
        };
        if let Some(reason) = expired {
            self.delete(key).await?;
            // Named by its hash, like its login event: the two tie up.
            crate::audit!(
                crate::audit::Kind::SessionEnded,
                by = "expiry",
                provider = %live.provider,
                session = %crate::audit::session_ref(&key.0),
                reason,
            );
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

    /// Caches a session just made, unless the cache was flushed or a
    /// session changed elsewhere since `epoch` (its views may be stale:
    /// the next request derives them again) or it was revoked meanwhile.
    pub(super) async fn cache_if_current(&self, key: &SessionKey, live: &Arc<LiveSession<V>>, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch && !self.revoked.contains_key(key) {
            self.cache.insert(*key, Arc::clone(live)).await;
        }
    }

    /// Drops a session's cached form because its record changed elsewhere
    /// (the next request reads it again); racing fills are not cached.
    pub async fn invalidate(&self, key: &SessionKey) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key).await;
        self.generation.bump();
    }

    /// Forgets a session in this process (cache and tombstone), without
    /// touching the store: for revocations another replica made.
    pub async fn forget(&self, key: &SessionKey) {
        self.revoked.insert(*key, ());
        self.cache.invalidate(key).await;
        self.generation.bump();
    }

    /// Drops every cached session: the next requests read through. Every
    /// verdict may be stale after this, bearer ones included.
    pub fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
        self.generation.bump_directory();
    }

    /// Sessions in this process's cache (for metrics). The cache counts
    /// lazily: its pending bookkeeping runs first, so the number is current
    /// (a scrape's cost, never a request's).
    pub async fn cached_count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
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
                    Invalidation::Lost => {
                        manager.read_through.store(true, Ordering::Release);
                        // A replica that cannot hear notices trusts no cache
                        // and re-checks whatever it admitted.
                        manager.generation.bump_directory();
                    }
                    // Another replica changed the directory: verdicts
                    // derived from it (bearer tokens) are checked again.
                    Invalidation::Directory => manager.generation.bump_directory(),
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
}
