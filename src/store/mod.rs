//! Durable state, behind one interface: session records, replay markers,
//! the refresh lease that makes a token rotation happen once across
//! replicas, and the notices that tell every replica a session was
//! revoked. SQLite (embedded, zero setup) for one node; PostgreSQL for
//! several, chosen by `[store] url`. Nothing outside this module names a
//! backend; the conformance suite (tests/store) runs unchanged against both.

pub mod directory;
mod directory_sql;
mod operators;
mod postgres;
mod session_rows;
pub mod signals;
mod sqlite;
mod sqlite_notices;

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::metrics::StoreMetrics;
use crate::secret::SecretString;
use directory::{DirGroup, DirUser, DirectoryFacts, MemberChange, WriteOutcome};
pub use operators::{SessionNames, SessionSelector, MIN_KEY_PREFIX, SHOWN_KEY_PREFIX};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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

impl SessionKey {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Self(key))
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
    /// The directory key of the user (their userName or externalId, as the
    /// login matched it), so directory changes reach this session.
    pub match_key: Option<String>,
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
    /// Holds only the URL's scheme: the rest may carry a password.
    #[error("the store URL scheme `{0}` is not supported (use sqlite://PATH or postgres://HOST/DB)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("the store failed moments ago; not waiting on it again yet")]
    RecentlyDown,
}

impl StoreError {
    /// A URL no backend opens, named by its scheme alone (a mistyped
    /// `postgress://user:password@...` must not print the password).
    pub fn unsupported_url(url: &str) -> Self {
        Self::UnsupportedUrl(crate::secret::url_scheme(url).unwrap_or("(none)").to_string())
    }
}

/// What another replica (or this one) changed, for caches to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// This session was revoked (logout, deprovisioning): never trust it again.
    Revoked(SessionKey),
    /// This session's record changed (a refresh elsewhere): read it again.
    Changed(SessionKey),
    /// The notice channel is down: notices may be missed until `Restored`,
    /// so caches must not be trusted (flush, read through).
    Lost,
    /// The notice channel is back: caching may resume.
    Restored,
    /// A replica changed the directory (SCIM): verdicts derived from it
    /// without a session (bearer tokens) must be reached again.
    Directory,
}

/// The notice channel name in PostgreSQL.
pub const NOTICE_CHANNEL: &str = "doorward_invalidate";

/// What every durable backend provides.
pub trait SessionStore: Send + Sync {
    fn insert(&self, record: &SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, key: &SessionKey) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;
    /// Replaces claims, tokens and refresh times after a refresh (and ends
    /// the refresh lease). False if the session is gone.
    fn update(&self, record: &SessionRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn touch(&self, key: &SessionKey, last_seen: i64) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes a session and tells every replica.
    fn delete(&self, key: &SessionKey) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes every session of an IdP session (`sid`) or, with `sid` None,
    /// of a subject; tells every replica; returns the keys deleted.
    fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
    /// Records a one-time id; false if it was seen before (replay). Atomic
    /// across replicas.
    fn remember_once(
        &self,
        scope: &str,
        id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes the session's refresh lease until `until` unless another
    /// holder's lease is still running at `now`: true for the one caller
    /// (on any replica) that may refresh now.
    fn lease_refresh(
        &self,
        key: &SessionKey,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The sessions of a directory user.
    fn sessions_of(&self, match_key: &str) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
    /// Ends every session of a directory user (deactivated, deleted) and
    /// tells every replica; returns the keys.
    fn delete_sessions_of(&self, match_key: &str) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
    /// Tells every replica these sessions' identity changed (directory
    /// groups or roles): they derive it again on the next request.
    fn announce_changed(&self, keys: &[SessionKey]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Tells every other replica the directory changed (their bearer
    /// verdicts are derived from it).
    fn announce_directory(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes expired sessions and replay markers.
    fn purge_expired(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Every (provider, issuer) that stored sessions came from: few, so a
    /// start or reload can see which no longer vouch for anyone.
    fn session_origins(&self) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Ends every session a provider (under that issuer) vouched for and
    /// tells every replica; returns the keys.
    fn delete_sessions_from(
        &self,
        provider: &str,
        issuer: &str,
    ) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
    /// The sessions an operator's selector names (all with an empty one),
    /// oldest first.
    fn list_sessions(
        &self,
        selector: &SessionSelector,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;
    /// Ends the sessions an operator's selector names and tells every
    /// replica (and every process on the same SQLite file); returns their
    /// keys. An empty selector ends none.
    fn revoke_sessions(
        &self,
        selector: &SessionSelector,
    ) -> impl Future<Output = Result<Vec<SessionKey>, StoreError>> + Send;
}

/// `[store]` settings beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The database password, when not in the URL.
    pub password: Option<SecretString>,
    /// Connections in the pool (PostgreSQL).
    pub max_connections: u32,
}

/// The store doorward uses: one backend, chosen by URL, with each
/// operation's latency and failures counted.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    metrics: StoreMetrics,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(SqliteStore::open(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(PgStore::open(url, options).await?)
        } else {
            return Err(StoreError::unsupported_url(url));
        };
        Ok(Self {
            backend,
            metrics: StoreMetrics::default(),
        })
    }

    /// Counts operations in `metrics` (the process registry's) from now on.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether replicas share this store (and so revoke sessions this
    /// process has cached): then caches read through until
    /// [`Store::subscribe`] says it listens. SQLite is one node; the notices
    /// of an operator's CLI on the same file are polled from a durable
    /// table, which cannot miss one, so it needs no such guard.
    /// The database's name in OpenTelemetry's conventions.
    fn system_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Notices of revocations made anywhere, for this process's caches:
    /// PostgreSQL's from every replica; SQLite's from other processes on
    /// the same file (the `doorward sessions revoke` CLI).
    pub fn subscribe(&self) -> Option<mpsc::UnboundedReceiver<Invalidation>> {
        match &self.backend {
            Backend::Sqlite(sqlite) => Some(sqlite.follow_notices()),
            Backend::Postgres(pg) => Some(pg.listen()),
        }
    }
}

/// Forwards each trait method to the backend, timing it under the
/// method's name.
macro_rules! dispatch {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        let started = std::time::Instant::now();
        // A span for traces only (the log never shows this target).
        let span = tracing::info_span!(target: "doorward::trace", "doorward.store",
            otel.kind = "client",
            db.system.name = $self.system_name(),
            db.operation.name = stringify!($method),
        );
        let result = match &$self.backend {
            Backend::Sqlite(s) => s.$method($($arg),*).instrument(span).await,
            Backend::Postgres(s) => s.$method($($arg),*).instrument(span).await,
        };
        $self.metrics.observe(stringify!($method), started.elapsed(), result.is_err());
        result
    }};
}

impl SessionStore for Store {
    async fn insert(&self, record: &SessionRecord) -> Result<(), StoreError> {
        dispatch!(self, insert(record))
    }
    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        dispatch!(self, get(key))
    }
    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        dispatch!(self, update(record))
    }
    async fn touch(&self, key: &SessionKey, last_seen: i64) -> Result<(), StoreError> {
        dispatch!(self, touch(key, last_seen))
    }
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        dispatch!(self, delete(key))
    }
    async fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<Vec<SessionKey>, StoreError> {
        dispatch!(self, delete_matching(issuer, subject, sid))
    }
    async fn remember_once(&self, scope: &str, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        dispatch!(self, remember_once(scope, id, expires_at))
    }
    async fn lease_refresh(&self, key: &SessionKey, now: i64, until: i64) -> Result<bool, StoreError> {
        dispatch!(self, lease_refresh(key, now, until))
    }
    async fn sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        dispatch!(self, sessions_of(match_key))
    }
    async fn delete_sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        dispatch!(self, delete_sessions_of(match_key))
    }
    async fn announce_changed(&self, keys: &[SessionKey]) -> Result<(), StoreError> {
        dispatch!(self, announce_changed(keys))
    }
    async fn announce_directory(&self) -> Result<(), StoreError> {
        dispatch!(self, announce_directory())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, ping())
    }
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        dispatch!(self, purge_expired(now))
    }
    async fn session_origins(&self) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, session_origins())
    }
    async fn delete_sessions_from(&self, provider: &str, issuer: &str) -> Result<Vec<SessionKey>, StoreError> {
        dispatch!(self, delete_sessions_from(provider, issuer))
    }
    async fn list_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionRecord>, StoreError> {
        dispatch!(self, list_sessions(selector))
    }
    async fn revoke_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionKey>, StoreError> {
        dispatch!(self, revoke_sessions(selector))
    }
}

impl signals::SignalStore for Store {
    async fn set_account_state(
        &self,
        account: &signals::AccountId<'_>,
        state: &signals::AccountState,
    ) -> Result<bool, StoreError> {
        dispatch!(self, set_account_state(account, state))
    }
    async fn forget_once(&self, scope: &str, id: &str) -> Result<(), StoreError> {
        dispatch!(self, forget_once(scope, id))
    }
    async fn disabled_account(
        &self,
        accounts: &[signals::AccountId<'_>],
    ) -> Result<Option<signals::AccountState>, StoreError> {
        dispatch!(self, disabled_account(accounts))
    }
}

impl directory::DirectoryStore for Store {
    async fn create_user(&self, user: &DirUser) -> Result<WriteOutcome, StoreError> {
        dispatch!(self, create_user(user))
    }
    async fn get_user(&self, id: &str) -> Result<Option<DirUser>, StoreError> {
        dispatch!(self, get_user(id))
    }
    async fn find_user_by_name(&self, user_name: &str) -> Result<Option<DirUser>, StoreError> {
        dispatch!(self, find_user_by_name(user_name))
    }
    async fn find_user_by_external_id(&self, external_id: &str) -> Result<Option<DirUser>, StoreError> {
        dispatch!(self, find_user_by_external_id(external_id))
    }
    async fn list_users(&self) -> Result<Vec<DirUser>, StoreError> {
        dispatch!(self, list_users())
    }
    async fn page_users(&self, offset: i64, limit: i64) -> Result<(Vec<DirUser>, i64), StoreError> {
        dispatch!(self, page_users(offset, limit))
    }
    async fn replace_user(&self, user: &DirUser, expected: Option<i64>) -> Result<WriteOutcome, StoreError> {
        dispatch!(self, replace_user(user, expected))
    }
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, delete_user(id))
    }
    async fn create_group(&self, group: &DirGroup, members: &[String]) -> Result<WriteOutcome, StoreError> {
        dispatch!(self, create_group(group, members))
    }
    async fn get_group(&self, id: &str) -> Result<Option<DirGroup>, StoreError> {
        dispatch!(self, get_group(id))
    }
    async fn find_group_by_name(&self, display_name: &str) -> Result<Option<DirGroup>, StoreError> {
        dispatch!(self, find_group_by_name(display_name))
    }
    async fn list_groups(&self) -> Result<Vec<DirGroup>, StoreError> {
        dispatch!(self, list_groups())
    }
    async fn update_group(
        &self,
        group: &DirGroup,
        expected: Option<i64>,
        members: &MemberChange,
    ) -> Result<WriteOutcome, StoreError> {
        dispatch!(self, update_group(group, expected, members))
    }
    async fn delete_group(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, delete_group(id))
    }
    async fn group_members(&self, group_id: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self, group_members(group_id))
    }
    async fn group_member_names(&self, group_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, group_member_names(group_id))
    }
    async fn groups_of_user(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, groups_of_user(user_id))
    }
    async fn facts(
        &self,
        by_user_name: Option<&str>,
        by_external_id: Option<&str>,
    ) -> Result<Option<DirectoryFacts>, StoreError> {
        dispatch!(self, facts(by_user_name, by_external_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        let key = SessionKey([0xab; 32]);
        assert_eq!(SessionKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(SessionKey::from_hex("zz"), None);
        assert_eq!(SessionKey::from_hex(&"g".repeat(64)), None);
    }
}
