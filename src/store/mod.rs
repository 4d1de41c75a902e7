//! Durable state: session records and replay markers. SQLite (embedded,
//! zero setup) by default; the [`SessionStore`] trait is what a Postgres
//! backend for several replicas implements next, and the conformance tests
//! in `tests` run against every backend unchanged.

pub mod sqlite;

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use sqlite::SqliteStore;

/// The store the rest of doorward uses.
pub type Store = SqliteStore;

/// A session's key in the store: SHA-256 of the session id, so a copy of
/// the database does not hand out usable cookies.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to correlate log lines.
        write!(
            f,
            "SessionKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Everything kept about one login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub key: SessionKey,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The IdP's session (OIDC `sid`, SAML `SessionIndex`), for single logout.
    pub sid: Option<String>,
    /// What the login protocol needs to log out later (SAML NameID).
    pub logout_hint: Option<String>,
    /// When the IdP's own session ends, if it said.
    pub idp_expires_at: Option<i64>,
    /// JSON: claims snapshot (id_token, userinfo, merged); never tokens.
    pub claims: String,
    /// Tokens, encrypted at rest.
    pub tokens: Vec<u8>,
    /// When the access token expires (unix seconds), if known.
    pub token_expires_at: Option<i64>,
    pub created_at: i64,
    /// Absolute end of the session (unix seconds).
    pub expires_at: i64,
    pub last_seen: i64,
    pub last_refresh: i64,
}

impl Serialize for SessionKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        bytes
            .try_into()
            .map(SessionKey)
            .map_err(|_| serde::de::Error::custom("a session key is 32 bytes"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store URL `{0}` is not supported (use sqlite://PATH)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
}

/// What every durable backend provides.
pub trait SessionStore: Send + Sync {
    fn insert(&self, record: &SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, key: &SessionKey) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;
    /// Replaces identity, claims, tokens and refresh times after a refresh.
    fn update(&self, record: &SessionRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn touch(&self, key: &SessionKey, last_seen: i64) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete(&self, key: &SessionKey) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes every session of an IdP session (`sid`) or, with `sid` None,
    /// of a subject; returns the keys deleted so caches can drop them.
    fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
    /// Records a one-time token id; false if it was seen before (replay).
    fn remember_once(
        &self,
        scope: &str,
        id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Whether the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes expired sessions and replay markers.
    fn purge_expired(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
