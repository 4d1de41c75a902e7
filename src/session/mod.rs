//! Sessions: an opaque id in a sealed cookie, the record in the durable
//! store, and a bounded moka cache of the compact form the request path
//! needs.

pub mod cookies;
pub mod id;
pub mod keys;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use moka::future::Cache;
use serde::{Deserialize, Serialize};

use crate::auth::view::{Views, ViewsFn};
use crate::identity::{Claims, Identity};
use crate::store::{SessionKey, SessionRecord, SessionStore, SqliteStore, StoreError};
use cookies::CookieSettings;
pub use id::SessionId;
use keys::KeyRing;

/// Seconds since the epoch: the store's clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Tokens of a session, encrypted at rest and never logged.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
}

/// Tokens ready to pass upstream (`[headers] pass_access_token`,
/// `pass_id_token`), kept in memory only when one of those is on.
#[derive(Debug, Default)]
pub struct PassedTokens {
    pub access: Option<http::HeaderValue>,
    pub id: Option<http::HeaderValue>,
}

impl PassedTokens {
    pub fn from_tokens(tokens: &Tokens) -> Self {
        let sensitive = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| http::HeaderValue::from_str(t).ok())
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
        };
        Self {
            access: sensitive(&tokens.access_token),
            id: sensitive(&tokens.id_token),
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

/// What a finished login (or refresh) hands to the session layer.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub sid: Option<String>,
    /// The claims the identity is computed from (ID token and userinfo,
    /// as `claims_source` says).
    pub merged: Claims,
    /// JSON snapshot of the claims (no tokens), for the debug view.
    pub claims: serde_json::Value,
    pub tokens: Tokens,
}

/// The merged claims stored in a record's snapshot.
pub fn merged_claims(snapshot: &str) -> Claims {
    serde_json::from_str::<serde_json::Value>(snapshot)
        .ok()
        .and_then(|v| v.get("merged").and_then(|m| m.as_object()).cloned())
        .unwrap_or_default()
}

/// The compact, cached form of a session: what a request needs.
#[derive(Debug)]
pub struct LiveSession {
    pub key: SessionKey,
    pub provider: String,
    /// The identity under each policy (global first, then route overrides).
    pub views: Views,
    pub expires_at: i64,
    pub token_expires_at: Option<i64>,
    pub has_refresh_token: bool,
    last_seen: AtomicI64,
    persisted_seen: AtomicI64,
    /// Held while this session's tokens are refreshed (single flight).
    pub refresh_lock: tokio::sync::Mutex<()>,
    /// Only when tokens are passed upstream.
    pub passed_tokens: Option<Arc<PassedTokens>>,
}

impl LiveSession {
    fn from_record(record: &SessionRecord, views: Views, tokens: &Tokens, pass_tokens: bool) -> Self {
        Self {
            key: record.key,
            provider: record.provider.clone(),
            views,
            expires_at: record.expires_at,
            token_expires_at: record.token_expires_at,
            has_refresh_token: tokens.refresh_token.is_some(),
            last_seen: AtomicI64::new(record.last_seen),
            persisted_seen: AtomicI64::new(record.last_seen),
            refresh_lock: tokio::sync::Mutex::new(()),
            passed_tokens: pass_tokens.then(|| Arc::new(PassedTokens::from_tokens(tokens))),
        }
    }

    /// The identity under the global policy.
    pub fn identity(&self) -> &Identity {
        &self.views[0].outcome.identity
    }

    pub fn last_seen(&self) -> i64 {
        self.last_seen.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub cookie_name: String,
    pub cookie: CookieSettings,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub cache_capacity: u64,
    /// Keep tokens in memory to pass them upstream.
    pub pass_tokens: bool,
}

/// Sessions for the whole process.
pub struct SessionManager {
    store: SqliteStore,
    views: ViewsFn,
    cache: Cache<SessionKey, Arc<LiveSession>>,
    keys: KeyRing,
    pub settings: SessionSettings,
}

/// How often `last_seen` is written back: idle timeouts are coarse, and the
/// request path must not write to the database on every request.
const TOUCH_EVERY: i64 = 60;

impl SessionManager {
    pub fn new(store: SqliteStore, keys: KeyRing, settings: SessionSettings, views: ViewsFn) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.cache_capacity)
            .time_to_idle(settings.idle_timeout)
            .build();
        Self {
            store,
            views,
            cache,
            keys,
            settings,
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Starts a session for a login: always a new id (no fixation). Returns
    /// the sealed cookie value.
    pub async fn create(&self, login: LoginResult) -> Result<(String, Arc<LiveSession>), StoreError> {
        let id = SessionId::new_random();
        let key = id.key();
        let now = now();
        let absolute = i64::try_from(self.settings.absolute_timeout.as_secs()).unwrap_or(i64::MAX);
        let views = (self.views)(&login.merged);
        let record = SessionRecord {
            key,
            provider: login.provider,
            issuer: login.issuer,
            subject: login.subject,
            sid: login.sid,
            identity: serde_json::to_string(&views[0].outcome.identity).unwrap_or_default(),
            claims: login.claims.to_string(),
            tokens: self.seal_tokens(&key, &login.tokens),
            token_expires_at: login.tokens.expires_at,
            created_at: now,
            expires_at: now.saturating_add(absolute),
            last_seen: now,
            last_refresh: now,
        };
        self.store.insert(&record).await?;
        let live = Arc::new(LiveSession::from_record(
            &record,
            views,
            &login.tokens,
            self.settings.pass_tokens,
        ));
        self.cache.insert(key, Arc::clone(&live)).await;
        let sealed = self.keys.seal_cookie(&self.settings.cookie_name, id.as_str());
        Ok((sealed, live))
    }

    /// The session a request's cookie names, if valid: tampered, foreign,
    /// expired or idle sessions are all "no session".
    pub async fn from_request(&self, headers: &HeaderMap) -> Option<Arc<LiveSession>> {
        let sealed = cookies::find(headers, &self.settings.cookie_name)?;
        let id = self.keys.open_cookie(&self.settings.cookie_name, sealed)?;
        let id = SessionId::parse(&id)?;
        self.get(&id.key()).await
    }

    pub async fn get(&self, key: &SessionKey) -> Option<Arc<LiveSession>> {
        let live = match self.cache.get(key).await {
            Some(live) => live,
            None => {
                let record = match self.store.get(key).await {
                    Ok(Some(record)) => record,
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::error!(error = %e, "session store read failed");
                        return None;
                    }
                };
                // The identity is recomputed from the stored claims, so a
                // changed mapping applies to existing sessions too.
                let views = (self.views)(&merged_claims(&record.claims));
                // Tokens that no longer open (a removed key) mean no refresh.
                let tokens = self.open_tokens(&record).unwrap_or_default();
                let live = Arc::new(LiveSession::from_record(
                    &record,
                    views,
                    &tokens,
                    self.settings.pass_tokens,
                ));
                self.cache.insert(*key, Arc::clone(&live)).await;
                live
            }
        };
        let now = now();
        let idle = i64::try_from(self.settings.idle_timeout.as_secs()).unwrap_or(i64::MAX);
        if now >= live.expires_at || now.saturating_sub(live.last_seen()) > idle {
            self.delete(key).await;
            return None;
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
        Some(live)
    }

    /// The cached form, if cached (no store read).
    pub async fn cached(&self, key: &SessionKey) -> Option<Arc<LiveSession>> {
        self.cache.get(key).await
    }

    /// The full record and its decrypted tokens (for refresh and logout).
    pub async fn record(&self, key: &SessionKey) -> Option<(SessionRecord, Tokens)> {
        let record = self.store.get(key).await.ok()??;
        let tokens = self.open_tokens(&record)?;
        Some((record, tokens))
    }

    /// Replaces a session's identity and tokens after a refresh.
    pub async fn replace(&self, key: &SessionKey, login: LoginResult) -> Result<Option<Arc<LiveSession>>, StoreError> {
        let Some(mut record) = self.store.get(key).await? else {
            return Ok(None);
        };
        let now = now();
        let views = (self.views)(&login.merged);
        record.sid = login.sid.or(record.sid);
        record.identity = serde_json::to_string(&views[0].outcome.identity).unwrap_or_default();
        record.claims = login.claims.to_string();
        record.tokens = self.seal_tokens(key, &login.tokens);
        record.token_expires_at = login.tokens.expires_at;
        record.last_refresh = now;
        record.last_seen = now;
        if !self.store.update(&record).await? {
            return Ok(None);
        }
        let live = Arc::new(LiveSession::from_record(
            &record,
            views,
            &login.tokens,
            self.settings.pass_tokens,
        ));
        self.cache.insert(*key, Arc::clone(&live)).await;
        Ok(Some(live))
    }

    pub async fn delete(&self, key: &SessionKey) {
        self.cache.invalidate(key).await;
        if let Err(e) = self.store.delete(key).await {
            tracing::error!(error = %e, "session store delete failed");
        }
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
            self.cache.invalidate(key).await;
        }
        Ok(keys.len())
    }

    fn seal_tokens(&self, key: &SessionKey, tokens: &Tokens) -> Vec<u8> {
        let plain = serde_json::to_vec(tokens).unwrap_or_default();
        self.keys.encrypt(&plain, &key.0)
    }

    fn open_tokens(&self, record: &SessionRecord) -> Option<Tokens> {
        let plain = self.keys.decrypt(&record.tokens, &record.key.0)?;
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
                match manager.store.purge_expired(now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
                }
            }
        });
    }
}
