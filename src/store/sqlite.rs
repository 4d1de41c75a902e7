//! The embedded SQLite store: a file, WAL mode, versioned migrations. One
//! node; but another process may share the file (`doorward sessions
//! revoke`), so every revocation also appends to the `notices` table, in
//! the same transaction, which a running doorward polls
//! (`sqlite_notices`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::session_rows::{delete_chosen, insert, key_from, origins, record_from, select_named};
use super::sqlite_notices::note_revoked;
use super::{SessionKey, SessionRecord, SessionSelector, SessionStore, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`,
    /// `sqlite::memory:`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::unsupported_url(url));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        // An in-memory database lives per connection: keep exactly one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Revocations other processes on this file make (see `sqlite_notices`).
    pub fn follow_notices(&self) -> tokio::sync::mpsc::UnboundedReceiver<super::Invalidation> {
        super::sqlite_notices::follow(self.pool.clone())
    }
}

super::directory_sql::impl_directory!(SqliteStore, sqlx::Sqlite);
super::signals::impl_signals!(SqliteStore);

impl SessionStore for SqliteStore {
    async fn insert(&self, r: &SessionRecord) -> Result<(), StoreError> {
        insert(r).execute(&self.pool).await?;
        Ok(())
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE key = ?")
            .bind(&key.0[..])
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from).transpose()
    }

    async fn update(&self, r: &SessionRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET sid = ?, claims = ?, tokens = ?, token_expires_at = ?, \
             last_seen = ?, last_refresh = ?, refresh_lease_until = NULL WHERE key = ?",
        )
        .bind(&r.sid)
        .bind(&r.claims)
        .bind(&r.tokens)
        .bind(r.token_expires_at)
        .bind(r.last_seen)
        .bind(r.last_refresh)
        .bind(&r.key.0[..])
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(&self, key: &SessionKey, last_seen: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE key = ?")
            .bind(last_seen)
            .bind(&key.0[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE key = ?")
            .bind(&key.0[..])
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            note_revoked(&mut tx, &[*key]).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<Vec<SessionKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = match (sid, subject) {
            (Some(sid), Some(subject)) => {
                sqlx::query("DELETE FROM sessions WHERE issuer = ? AND sid = ? AND subject = ? RETURNING key")
                    .bind(issuer)
                    .bind(sid)
                    .bind(subject)
                    .fetch_all(&mut *tx)
                    .await?
            }
            (Some(sid), None) => {
                sqlx::query("DELETE FROM sessions WHERE issuer = ? AND sid = ? RETURNING key")
                    .bind(issuer)
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?
            }
            (None, Some(subject)) => {
                sqlx::query("DELETE FROM sessions WHERE issuer = ? AND subject = ? RETURNING key")
                    .bind(issuer)
                    .bind(subject)
                    .fetch_all(&mut *tx)
                    .await?
            }
            (None, None) => return Ok(Vec::new()),
        };
        let keys = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        note_revoked(&mut tx, &keys).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn remember_once(&self, scope: &str, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO seen_once (scope, id, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(scope)
            .bind(id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lease_refresh(&self, key: &SessionKey, now: i64, until: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET refresh_lease_until = ? \
             WHERE key = ? AND (refresh_lease_until IS NULL OR refresh_lease_until <= ?)",
        )
        .bind(until)
        .bind(&key.0[..])
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        let rows = sqlx::query("SELECT key FROM sessions WHERE match_key = ?")
            .bind(match_key)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from).collect()
    }

    async fn delete_sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("DELETE FROM sessions WHERE match_key = ? RETURNING key")
            .bind(match_key)
            .fetch_all(&mut *tx)
            .await?;
        let keys = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        note_revoked(&mut tx, &keys).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn announce_changed(&self, _keys: &[SessionKey]) -> Result<(), StoreError> {
        // One node: the process that changed them invalidates its cache.
        Ok(())
    }

    async fn announce_directory(&self) -> Result<(), StoreError> {
        // One node: there is no other replica to tell.
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let once = sqlx::query("DELETE FROM seen_once WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        super::sqlite_notices::purge(&self.pool).await?;
        Ok(sessions.rows_affected() + once.rows_affected())
    }

    async fn session_origins(&self) -> Result<Vec<(String, String)>, StoreError> {
        origins(&self.pool).await
    }

    async fn delete_sessions_from(&self, provider: &str, issuer: &str) -> Result<Vec<SessionKey>, StoreError> {
        // Other processes on this file (an operator's CLI, a second
        // doorward) hear of it through the notices table.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("DELETE FROM sessions WHERE provider = ? AND issuer = ? RETURNING key")
            .bind(provider)
            .bind(issuer)
            .fetch_all(&mut *tx)
            .await?;
        let ended = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        note_revoked(&mut tx, &ended).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn list_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionRecord>, StoreError> {
        select_named(&self.pool, selector).await
    }

    async fn revoke_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionKey>, StoreError> {
        if selector.is_empty() {
            return Ok(Vec::new());
        }
        // Chosen first, then deleted in a transaction that starts by
        // writing (a read that turns into a write in WAL mode could fail at
        // once when another process wrote in between, instead of waiting).
        let chosen = select_named(&self.pool, selector).await?;
        // Nothing named (most shared signals about users not logged in):
        // no write transaction to open and commit.
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let ended = delete_chosen::<sqlx::Sqlite>(&mut tx, &chosen).await?;
        note_revoked(&mut tx, &ended).await?;
        tx.commit().await?;
        Ok(ended)
    }
}
