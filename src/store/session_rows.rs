//! Session rows read back, written once for both backends: SQLite and
//! PostgreSQL name the columns alike and decode them to the same Rust
//! types, so a row becomes a [`SessionRecord`] (or just its key) here and
//! nowhere else; and the statements that are alike too (a new session, an
//! operator's selection and revocation).

use sqlx::query::Query;
use sqlx::Row;

use super::{SessionKey, SessionRecord, SessionSelector, StoreError};

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

/// The sessions an operator's selector names, oldest first: the columns
/// it names exactly (provider, issuer, subject, sid) narrowed in SQL, the
/// rest decided on each row (a user is matched by the claims too). The
/// statement names only the columns given, so the `(issuer, subject)` and
/// `(issuer, sid)` indexes serve it: a shared signal names one user among
/// all of its provider's sessions, and reading every one of them cost each
/// SET a scan (13 SETs/s at 10,000 sessions on SQLite). One text per
/// combination for both backends.
pub(crate) async fn select_named<'c, DB, E>(
    executor: E,
    selector: &SessionSelector,
) -> Result<Vec<SessionRecord>, StoreError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> Vec<u8>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<i64>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    let exact = [
        ("provider", &selector.provider),
        ("issuer", &selector.issuer),
        ("subject", &selector.subject),
        ("sid", &selector.sid),
    ];
    let mut sql = String::from("SELECT * FROM sessions WHERE 1 = 1");
    let mut given = 0;
    for (column, value) in &exact {
        if value.is_some() {
            given += 1;
            sql.push_str(&format!(" AND {column} = ${given}"));
        }
    }
    // An email is matched in the claims: the text is searched in SQL for
    // the claim as compact JSON writes it, so only candidate rows are
    // decoded (the match below still decides). Only for an ASCII address:
    // SQLite's lower() folds ASCII alone, and a prefilter that missed a row
    // would leave a session the event names alive.
    let email_pattern = selector.email.as_deref().filter(|e| e.is_ascii()).map(email_like);
    if email_pattern.is_some() {
        given += 1;
        sql.push_str(&format!(" AND lower(claims) LIKE ${given} ESCAPE '\\'"));
    }
    sql.push_str(" ORDER BY created_at, key");
    let mut query = sqlx::query(&sql);
    for (_, value) in exact {
        if value.is_some() {
            query = query.bind(value.clone());
        }
    }
    if let Some(pattern) = email_pattern {
        query = query.bind(Some(pattern));
    }
    let rows = query.fetch_all(executor).await?;
    let mut named = Vec::new();
    for row in &rows {
        let record = record_from(row)?;
        if selector.matches(&record) {
            named.push(record);
        }
    }
    Ok(named)
}

/// A LIKE pattern for rows whose claims hold `"email":"<email>"` (any
/// case), with LIKE's own characters escaped.
fn email_like(email: &str) -> String {
    let json = serde_json::Value::String(email.to_ascii_lowercase()).to_string();
    let mut pattern = String::from("%\"email\":");
    for c in json.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Every (provider, issuer) that stored sessions came from: few, so a
/// start or a reload can see which no longer vouch for anyone.
pub(crate) async fn origins<'c, DB, E>(executor: E) -> Result<Vec<(String, String)>, StoreError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    let rows = sqlx::query("SELECT DISTINCT provider, issuer FROM sessions")
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("provider")?, row.try_get("issuer")?)))
        .collect()
}

/// Deletes each of `chosen` that is still there (in the caller's
/// transaction) and returns the keys deleted: an operator's revocation,
/// chosen by [`select_named`] just before.
pub(crate) async fn delete_chosen<DB>(
    conn: &mut DB::Connection,
    chosen: &[SessionRecord],
) -> Result<Vec<SessionKey>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut ended = Vec::new();
    for record in chosen {
        // RETURNING says whether it was still there, on both backends.
        let gone = sqlx::query::<DB>("DELETE FROM sessions WHERE key = $1 RETURNING key")
            .bind(record.key.0.to_vec())
            .fetch_optional(&mut *conn)
            .await?;
        if gone.is_some() {
            ended.push(record.key);
        }
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::email_like;

    #[test]
    fn the_email_pattern_is_the_claim_as_compact_json_with_like_characters_escaped() {
        assert_eq!(email_like("Alice@Example.com"), r#"%"email":"alice@example.com"%"#);
        assert_eq!(email_like("a_b%c@x"), r#"%"email":"a\_b\%c@x"%"#);
        assert_eq!(email_like(r#"q"uote@x"#), r#"%"email":"q\\"uote@x"%"#);
    }
}
