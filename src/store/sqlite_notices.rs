//! Revocation notices between processes that share one SQLite file: every
//! revocation appends the session's key to `notices` in its own
//! transaction, and a running doorward polls for rows past the last it saw
//! (one indexed query every [`POLL_EVERY`]), so a session that
//! `doorward sessions revoke` ended is dropped from its cache within a
//! second. The table is durable: a poll that fails misses nothing, the
//! next one reads on from the same id.

use std::time::Duration;

use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::mpsc;

use super::{Invalidation, SessionKey, StoreError};

/// How often a running doorward looks for revocations made elsewhere.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long notices are kept: far past any poll gap.
const KEEP_FOR_SECS: i64 = 3600;
/// Most notices read in one poll (the rest come on the next).
const BATCH: i64 = 1000;

/// The database's clock, in unix seconds: the writers of one file may be
/// different processes, but they share this.
const NOW: &str = "CAST(strftime('%s','now') AS INTEGER)";

/// Records revocations, in the caller's transaction: the notice exists
/// when, and only if, the delete commits.
pub(super) async fn note_revoked(tx: &mut Transaction<'_, Sqlite>, keys: &[SessionKey]) -> Result<(), StoreError> {
    for key in keys {
        sqlx::query(&format!("INSERT INTO notices (key, at) VALUES (?, {NOW})"))
            .bind(&key.0[..])
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Drops notices older than anyone still needs.
pub(super) async fn purge(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query(&format!("DELETE FROM notices WHERE at < {NOW} - ?"))
        .bind(KEEP_FOR_SECS)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revocations made from now on by any process on the file `pool` opens
/// (this one included: forgetting twice is harmless). The task ends when
/// the receiver is dropped.
pub(super) fn follow(pool: SqlitePool) -> mpsc::UnboundedReceiver<Invalidation> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut last = None;
        while !tx.is_closed() {
            match poll(&pool, last).await {
                Ok((seen, keys)) => {
                    last = Some(seen);
                    for key in keys {
                        if tx.send(Invalidation::Revoked(key)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "store notices: cannot read them yet"),
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    });
    rx
}

/// The notices after `last` and the id to read on from; the first poll
/// (`last` None) only finds where the table ends now.
async fn poll(pool: &SqlitePool, last: Option<i64>) -> Result<(i64, Vec<SessionKey>), StoreError> {
    let Some(last) = last else {
        let end: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM notices")
            .fetch_one(pool)
            .await?;
        return Ok((end, Vec::new()));
    };
    let rows = sqlx::query("SELECT id, key FROM notices WHERE id > ? ORDER BY id LIMIT ?")
        .bind(last)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
    let mut seen = last;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        seen = seen.max(row.try_get::<i64, _>("id")?);
        keys.push(super::session_rows::key_from(row)?);
    }
    Ok((seen, keys))
}
