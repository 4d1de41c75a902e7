//! Session rows read back, written once for both backends: SQLite and
//! PostgreSQL name the columns alike and decode them to the same Rust
//! types, so a row becomes a [`SessionRecord`] (or just its key) here and
//! nowhere else.

use sqlx::query::Query;
use sqlx::Row;

use super::{SessionKey, SessionRecord, StoreError};

/// The session a row holds.
pub(crate) fn record_from<R: Row>(row: &R) -> Result<SessionRecord, StoreError>
where
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(SessionRecord {
        key: key_from(row)?,
        provider: row.try_get("provider")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        sid: row.try_get("sid")?,
        logout_hint: row.try_get("logout_hint")?,
        idp_expires_at: row.try_get("idp_expires_at")?,
        claims: row.try_get("claims")?,
        tokens: row.try_get("tokens")?,
        token_expires_at: row.try_get("token_expires_at")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_seen: row.try_get("last_seen")?,
        last_refresh: row.try_get("last_refresh")?,
        match_key: row.try_get("match_key")?,
    })
}

/// The session key in a row's `key` column; anything but 32 bytes is a
/// corrupt row, not a key to guess at.
pub(crate) fn key_from<R: Row>(row: &R) -> Result<SessionKey, StoreError>
where
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    let key: Vec<u8> = row.try_get("key")?;
    key.try_into()
        .map(SessionKey)
        .map_err(|_| StoreError::Corrupt("session key is not 32 bytes".into()))
}

/// The statement that stores a new session, bound to `r`. SQLite and
/// PostgreSQL both take `$N` parameters, so the one text serves both.
pub(crate) fn insert<'q, DB>(r: &'q SessionRecord) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO sessions (key, provider, issuer, subject, sid, logout_hint, idp_expires_at, claims, \
         tokens, token_expires_at, created_at, expires_at, last_seen, last_refresh, match_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&r.key.0[..])
    .bind(&r.provider)
    .bind(&r.issuer)
    .bind(&r.subject)
    .bind(&r.sid)
    .bind(&r.logout_hint)
    .bind(r.idp_expires_at)
    .bind(&r.claims)
    .bind(&r.tokens)
    .bind(r.token_expires_at)
    .bind(r.created_at)
    .bind(r.expires_at)
    .bind(r.last_seen)
    .bind(r.last_refresh)
    .bind(&r.match_key)
}
