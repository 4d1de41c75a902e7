//! PostgreSQL, for several replicas: a connection pool (TLS with rustls
//! when the URL asks for it, the password from the URL or from a secret),
//! versioned migrations at start, and LISTEN/NOTIFY for revocations. Every
//! delete notifies in the same transaction, so a replica that sees the
//! commit also gets the notice; a replica whose notice connection drops is
//! told so (`Invalidation::Lost`) and reads through until it is back.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, watch};

use super::session_rows::{delete_chosen, insert, key_from, origins, record_from, select_named};
use super::{
    Invalidation, SessionKey, SessionRecord, SessionSelector, SessionStore, StoreError, StoreOptions, NOTICE_CHANNEL,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a query may wait for a pooled connection: past it the request
/// gets a 503 instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Retry delays for the notice connection.
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(200);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where the notice listener connects: its own pool, so a connection
    /// stuck after a silent loss cannot starve requests.
    listener_pool: PgPool,
    /// This process's mark on its notices, so it can skip its own
    /// "changed" notices (its cache already holds the new record).
    origin: String,
    /// Directory notices: the last one this process sent, and the last of
    /// its own its listener heard back (see [`PgStore::announce_directory`]).
    directory_sent: Arc<AtomicU64>,
    directory_heard: Arc<watch::Sender<u64>>,
    /// Whether the listener is listening now (else nothing comes back).
    listening: Arc<AtomicBool>,
}

/// How long a directory write waits to hear its own notice come back.
const ECHO_WAIT: Duration = Duration::from_secs(1);

/// How often a replica proves its notice connection works, and how long
/// without any notice (its own heartbeat included) counts as lost: a
/// connection can die silently (a frozen server, a black-holed network).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const HEARTBEAT_LOST_AFTER: Duration = Duration::from_secs(15);

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(url)?.application_name("doorward");
        if let Some(password) = &options.password {
            connect = connect.password(password.expose());
        }
        // Migrations on a connection of their own, closed whatever happens:
        // a failed run must not leave its lock held in a pooled connection
        // (every other replica's migrations would wait on it).
        {
            use sqlx::ConnectOptions;
            let mut conn = connect.connect().await?;
            let migrated = MIGRATOR.run(&mut conn).await;
            let _ = sqlx::Connection::close(conn).await;
            migrated?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await?;
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(connect.application_name("doorward-notices"));
        let origin: [u8; 8] = rand::random();
        Ok(Self {
            pool,
            listener_pool,
            origin: origin.iter().map(|b| format!("{b:02x}")).collect(),
            directory_sent: Arc::new(AtomicU64::new(0)),
            directory_heard: Arc::new(watch::channel(0).0),
            listening: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Revocation notices from every replica, with `Lost`/`Restored` when
    /// the notice connection drops and comes back. The task ends when the
    /// receiver is dropped.
    pub fn listen(&self) -> mpsc::UnboundedReceiver<Invalidation> {
        let (tx, rx) = mpsc::unbounded_channel();
        let store = self.clone();
        let heartbeats = self.clone();
        let heartbeat_tx = tx.clone();
        tokio::spawn(async move {
            // Through the request pool: a heartbeat that arrives proves the
            // whole path (commit, notify, delivery) works.
            while !heartbeat_tx.is_closed() {
                let _ = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(NOTICE_CHANNEL)
                    .bind(format!("{HEARTBEAT}{}", heartbeats.origin))
                    .execute(&heartbeats.pool)
                    .await;
                tokio::time::sleep(HEARTBEAT_EVERY).await;
            }
        });
        tokio::spawn(async move { store.follow_notices(tx).await });
        rx
    }

    async fn follow_notices(self, tx: mpsc::UnboundedSender<Invalidation>) {
        let mut retry = LISTEN_RETRY_FIRST;
        loop {
            let listener = async {
                let mut listener = PgListener::connect_with(&self.listener_pool).await?;
                // Report a loss at once instead of reconnecting inside
                // try_recv (which would hide it).
                listener.eager_reconnect(false);
                listener.listen(NOTICE_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listener.await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::debug!(error = %e, "store notices: cannot listen yet");
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LISTEN_RETRY_MAX);
                    continue;
                }
            };
            retry = LISTEN_RETRY_FIRST;
            // Only now is every later notice seen: caches may be trusted.
            self.listening.store(true, Ordering::Release);
            if tx.send(Invalidation::Restored).is_err() {
                return;
            }
            tracing::info!("store notices: listening for revocations");
            loop {
                let notice = match tokio::time::timeout(HEARTBEAT_LOST_AFTER, listener.try_recv()).await {
                    Ok(Ok(Some(notice))) => notice,
                    // Closed, failed, or silent for too long.
                    _ => {
                        tracing::warn!(
                            "store notices: connection lost; sessions are read from the store until it is back"
                        );
                        self.listening.store(false, Ordering::Release);
                        if tx.send(Invalidation::Lost).is_err() {
                            return;
                        }
                        break;
                    }
                };
                if let Some(invalidation) = self.parse(notice.payload()) {
                    if tx.send(invalidation).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// `r:<origin>:<key>` (revoked), `c:<origin>:<key>` (changed),
    /// `d:<origin>:` (the directory changed), or a heartbeat. A replica's
    /// own "changed" and "directory" notices are skipped: it applied them.
    fn parse(&self, payload: &str) -> Option<Invalidation> {
        let mut parts = payload.splitn(3, ':');
        let (kind, origin, key) = (parts.next()?, parts.next()?, parts.next()?);
        if kind == "d" {
            if origin == self.origin {
                // Our own, come back: every listener has it now.
                let seq = key.parse().unwrap_or(0);
                self.directory_heard.send_if_modified(|heard| {
                    let newer = seq > *heard;
                    *heard = (*heard).max(seq);
                    newer
                });
                return None;
            }
            return Some(Invalidation::Directory);
        }
        let key = SessionKey::from_hex(key)?;
        match kind {
            "r" => Some(Invalidation::Revoked(key)),
            "c" if origin != self.origin => Some(Invalidation::Changed(key)),
            _ => None,
        }
    }
}

/// Payload prefix of a heartbeat (ignored by [`PgStore::parse`]).
const HEARTBEAT: &str = "h:";

super::directory_sql::impl_directory!(PgStore, sqlx::Postgres);
super::signals::impl_signals!(PgStore);

impl SessionStore for PgStore {
    async fn insert(&self, r: &SessionRecord) -> Result<(), StoreError> {
        insert(r).execute(&self.pool).await?;
        Ok(())
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE key = $1")
            .bind(&key.0[..])
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from).transpose()
    }

    async fn update(&self, r: &SessionRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE sessions SET sid = $1, claims = $2, tokens = $3, token_expires_at = $4, \
             last_seen = $5, last_refresh = $6, refresh_lease_until = NULL WHERE key = $7",
        )
        .bind(&r.sid)
        .bind(&r.claims)
        .bind(&r.tokens)
        .bind(r.token_expires_at)
        .bind(r.last_seen)
        .bind(r.last_refresh)
        .bind(&r.key.0[..])
        .execute(&mut *tx)
        .await?;
        // Other replicas must drop their copy of the old identity.
        notify(&mut tx, &[r.key], &format!("c:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(&self, key: &SessionKey, last_seen: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = GREATEST(last_seen, $1) WHERE key = $2")
            .bind(last_seen)
            .bind(&key.0[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE key = $1")
            .bind(&key.0[..])
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, &[*key], &format!("r:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_matching(
        &self,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<Vec<SessionKey>, StoreError> {
        if subject.is_none() && sid.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // NULL parameters match anything: one statement for every case.
        let rows = sqlx::query(
            "DELETE FROM sessions WHERE issuer = $1 \
             AND ($2::TEXT IS NULL OR subject = $2) AND ($3::TEXT IS NULL OR sid = $3) RETURNING key",
        )
        .bind(issuer)
        .bind(subject)
        .bind(sid)
        .fetch_all(&mut *tx)
        .await?;
        let keys = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        notify(&mut tx, &keys, &format!("r:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn remember_once(&self, scope: &str, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT INTO seen_once (scope, id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(scope)
                .bind(id)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lease_refresh(&self, key: &SessionKey, now: i64, until: i64) -> Result<bool, StoreError> {
        // One UPDATE: Postgres locks the row, so of two replicas only one
        // sees the lease free.
        let done = sqlx::query(
            "UPDATE sessions SET refresh_lease_until = $1 \
             WHERE key = $2 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $3)",
        )
        .bind(until)
        .bind(&key.0[..])
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        let rows = sqlx::query("SELECT key FROM sessions WHERE match_key = $1")
            .bind(match_key)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from).collect()
    }

    async fn delete_sessions_of(&self, match_key: &str) -> Result<Vec<SessionKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("DELETE FROM sessions WHERE match_key = $1 RETURNING key")
            .bind(match_key)
            .fetch_all(&mut *tx)
            .await?;
        let keys = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        notify(&mut tx, &keys, &format!("r:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn announce_changed(&self, keys: &[SessionKey]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Tagged with another origin than ours: this process must re-derive
        // the sessions too.
        notify(&mut tx, keys, "c:directory:").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tells the other replicas the directory changed, and waits (a
    /// moment at most) until this process's own listener hears the notice
    /// back: the database hands a notice to every listener at once, so the
    /// writer's answer (a SCIM response) then comes after every replica got
    /// it, and their next request sees the change.
    async fn announce_directory(&self) -> Result<(), StoreError> {
        let seq = self.directory_sent.fetch_add(1, Ordering::AcqRel) + 1;
        let mut heard = self.directory_heard.subscribe();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTICE_CHANNEL)
            .bind(format!("d:{}:{seq}", self.origin))
            .execute(&self.pool)
            .await?;
        // Not listening (yet, or any more): nothing comes back, and every
        // replica in that state trusts no cache anyway.
        if !self.listening.load(Ordering::Acquire) {
            return Ok(());
        }
        if tokio::time::timeout(ECHO_WAIT, heard.wait_for(|h| *h >= seq))
            .await
            .is_err()
        {
            tracing::debug!("store notices: a directory notice was not heard back in time");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let once = sqlx::query("DELETE FROM seen_once WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(sessions.rows_affected() + once.rows_affected())
    }

    async fn session_origins(&self) -> Result<Vec<(String, String)>, StoreError> {
        origins(&self.pool).await
    }

    async fn delete_sessions_from(&self, provider: &str, issuer: &str) -> Result<Vec<SessionKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("DELETE FROM sessions WHERE provider = $1 AND issuer = $2 RETURNING key")
            .bind(provider)
            .bind(issuer)
            .fetch_all(&mut *tx)
            .await?;
        let keys = rows.iter().map(key_from).collect::<Result<Vec<_>, _>>()?;
        notify(&mut tx, &keys, &format!("r:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn list_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionRecord>, StoreError> {
        select_named(&self.pool, selector).await
    }

    async fn revoke_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionKey>, StoreError> {
        if selector.is_empty() {
            return Ok(Vec::new());
        }
        let chosen = select_named(&self.pool, selector).await?;
        // Nothing named (most shared signals about users not logged in):
        // no write transaction to open and commit.
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let ended = delete_chosen::<sqlx::Postgres>(&mut tx, &chosen).await?;
        notify(&mut tx, &ended, &format!("r:{}:", self.origin)).await?;
        tx.commit().await?;
        Ok(ended)
    }
}

/// Tells every replica (in the caller's transaction: the notice goes out
/// when, and only if, the change commits).
async fn notify(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    keys: &[SessionKey],
    prefix: &str,
) -> Result<(), StoreError> {
    for key in keys {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTICE_CHANNEL)
            .bind(format!("{prefix}{}", key.to_hex()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
