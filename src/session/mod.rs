//! Sessions: an opaque id in a sealed cookie, the record in the durable
//! store, and a bounded moka cache of the compact form the request path
//! needs.
//!
//! The session layer does not know what callers do with a session: what
//! it caches beside the record (`V`, the identity views) is made by a
//! function its owner passes in.
//!
//! The manager (start, find, refresh, end a session) is in `manager`; how
//! its cache stays coherent with the store and the other replicas (epoch,
//! revocation tombstones, read-through, store notices) in `coherence`.

mod coherence;
pub mod cookies;
mod create;
#[cfg(test)]
mod epoch_tests;
#[cfg(test)]
mod expiry_tests;
pub mod id;
mod manager;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::identity::Claims;
use crate::login::{PassedTokens, Tokens};
use crate::store::directory::DirectoryFacts;
use crate::store::{SessionKey, SessionRecord};
use cookies::CookieSettings;
pub use create::DerivedLogin;
pub use id::SessionId;
pub use manager::SessionManager;

/// What the cache may weigh a session by: roughly its bytes in memory.
pub trait Footprint {
    fn footprint(&self) -> usize;
}

/// Where a session came from, for deriving its views.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub provider: &'a str,
    pub issuer: &'a str,
    /// What shared signals said of the session since its login.
    pub posture: &'a crate::access::Posture,
    /// How the login was made (acr, amr, auth_time).
    pub authentication: &'a crate::login::Authentication,
}

/// Why a session's login result is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// A token refresh: the login's authentication stays.
    Refresh,
    /// A step-up login of the same user: its authentication replaces it.
    StepUp,
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
