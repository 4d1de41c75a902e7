//! The directory's SQL, written once for both backends: SQLite and
//! PostgreSQL accept the same statements here (`$N` parameters in order,
//! `ON CONFLICT`, `RETURNING`), so one macro implements
//! [`DirectoryStore`](super::directory::DirectoryStore) for each. Writes
//! that touch several rows run in one transaction: a failed request stores
//! nothing.

/// `impl DirectoryStore for $store` over its `pool`.
macro_rules! impl_directory {
    ($store:ty, $db:ty) => {
        impl $crate::store::directory::DirectoryStore for $store {
            async fn create_user(
                &self,
                u: &$crate::store::directory::DirUser,
            ) -> Result<$crate::store::directory::WriteOutcome, $crate::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO scim_users (id, user_name, user_name_lower, external_id, active, resource, \
                     version, created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&u.id)
                .bind(&u.user_name)
                .bind(u.user_name.to_lowercase())
                .bind(&u.external_id)
                .bind(u.active)
                .bind(&u.resource)
                .bind(u.version)
                .bind(u.created)
                .bind(u.modified)
                .execute(&self.pool)
                .await;
                $crate::store::directory_sql::outcome(done.map(|_| ()))
            }

            async fn get_user(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::directory::DirUser>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT * FROM scim_users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map($crate::store::directory_sql::user_from).transpose()
            }

            async fn find_user_by_name(
                &self,
                user_name: &str,
            ) -> Result<Option<$crate::store::directory::DirUser>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT * FROM scim_users WHERE user_name_lower = $1")
                    .bind(user_name.to_lowercase())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map($crate::store::directory_sql::user_from).transpose()
            }

            async fn find_user_by_external_id(
                &self,
                external_id: &str,
            ) -> Result<Option<$crate::store::directory::DirUser>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT * FROM scim_users WHERE external_id = $1 ORDER BY created, id LIMIT 1")
                    .bind(external_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map($crate::store::directory_sql::user_from).transpose()
            }

            async fn list_users(&self) -> Result<Vec<$crate::store::directory::DirUser>, $crate::store::StoreError> {
                let rows = sqlx::query("SELECT * FROM scim_users ORDER BY created, id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map($crate::store::directory_sql::user_from).collect()
            }

            async fn page_users(
                &self,
                offset: i64,
                limit: i64,
            ) -> Result<(Vec<$crate::store::directory::DirUser>, i64), $crate::store::StoreError> {
                let rows = sqlx::query("SELECT * FROM scim_users ORDER BY created, id LIMIT $1 OFFSET $2")
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scim_users")
                    .fetch_one(&self.pool)
                    .await?;
                let users = rows
                    .iter()
                    .map($crate::store::directory_sql::user_from)
                    .collect::<Result<_, _>>()?;
                Ok((users, total))
            }

            async fn replace_user(
                &self,
                u: &$crate::store::directory::DirUser,
                expected: Option<i64>,
            ) -> Result<$crate::store::directory::WriteOutcome, $crate::store::StoreError> {
                use $crate::store::directory::WriteOutcome;
                let done = sqlx::query(
                    "UPDATE scim_users SET user_name = $1, user_name_lower = $2, external_id = $3, active = $4, \
                     resource = $5, version = version + 1, modified = $6 \
                     WHERE id = $7 AND (CAST($8 AS BIGINT) IS NULL OR version = $8)",
                )
                .bind(&u.user_name)
                .bind(u.user_name.to_lowercase())
                .bind(&u.external_id)
                .bind(u.active)
                .bind(&u.resource)
                .bind(u.modified)
                .bind(&u.id)
                .bind(expected)
                .execute(&self.pool)
                .await;
                match done {
                    Ok(done) if done.rows_affected() == 1 => Ok(WriteOutcome::Done),
                    Ok(_) => Ok(match self.get_user(&u.id).await? {
                        Some(_) => WriteOutcome::VersionMismatch,
                        None => WriteOutcome::Missing,
                    }),
                    Err(e) => $crate::store::directory_sql::outcome(Err(e)),
                }
            }

            async fn delete_user(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM scim_members WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM scim_users WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_group(
                &self,
                g: &$crate::store::directory::DirGroup,
                members: &[String],
            ) -> Result<$crate::store::directory::WriteOutcome, $crate::store::StoreError> {
                use $crate::store::directory::WriteOutcome;
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "INSERT INTO scim_groups (id, display_name, display_name_lower, external_id, resource, \
                     version, created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&g.id)
                .bind(&g.display_name)
                .bind(g.display_name.to_lowercase())
                .bind(&g.external_id)
                .bind(&g.resource)
                .bind(g.version)
                .bind(g.created)
                .bind(g.modified)
                .execute(&mut *tx)
                .await;
                if let Err(e) = done {
                    return $crate::store::directory_sql::outcome(Err(e));
                }
                if let Some(unknown) = add_members(&mut tx, &g.id, members).await? {
                    return Ok(WriteOutcome::UnknownMember(unknown));
                }
                tx.commit().await?;
                Ok(WriteOutcome::Done)
            }

            async fn get_group(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::directory::DirGroup>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT * FROM scim_groups WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map($crate::store::directory_sql::group_from).transpose()
            }

            async fn find_group_by_name(
                &self,
                display_name: &str,
            ) -> Result<Option<$crate::store::directory::DirGroup>, $crate::store::StoreError> {
                let row =
                    sqlx::query("SELECT * FROM scim_groups WHERE display_name_lower = $1 ORDER BY created, id LIMIT 1")
                        .bind(display_name.to_lowercase())
                        .fetch_optional(&self.pool)
                        .await?;
                row.as_ref().map($crate::store::directory_sql::group_from).transpose()
            }

            async fn list_groups(&self) -> Result<Vec<$crate::store::directory::DirGroup>, $crate::store::StoreError> {
                let rows = sqlx::query("SELECT * FROM scim_groups ORDER BY created, id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map($crate::store::directory_sql::group_from).collect()
            }

            async fn update_group(
                &self,
                g: &$crate::store::directory::DirGroup,
                expected: Option<i64>,
                members: &$crate::store::directory::MemberChange,
            ) -> Result<$crate::store::directory::WriteOutcome, $crate::store::StoreError> {
                use $crate::store::directory::{MemberChange, WriteOutcome};
                let mut tx = self.pool.begin().await?;
                // The version check and bump first: it also locks the row,
                // so concurrent member changes to one group queue here.
                let done = sqlx::query(
                    "UPDATE scim_groups SET display_name = $1, display_name_lower = $2, external_id = $3, \
                     resource = $4, version = version + 1, modified = $5 WHERE id = $6 AND (CAST($7 AS BIGINT) IS NULL OR version = $7)",
                )
                .bind(&g.display_name)
                .bind(g.display_name.to_lowercase())
                .bind(&g.external_id)
                .bind(&g.resource)
                .bind(g.modified)
                .bind(&g.id)
                .bind(expected)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM scim_groups WHERE id = $1")
                        .bind(&g.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Ok(match exists {
                        Some(_) => WriteOutcome::VersionMismatch,
                        None => WriteOutcome::Missing,
                    });
                }
                let unknown = match members {
                    MemberChange::None => None,
                    MemberChange::Set(ids) => {
                        sqlx::query("DELETE FROM scim_members WHERE group_id = $1")
                            .bind(&g.id)
                            .execute(&mut *tx)
                            .await?;
                        add_members(&mut tx, &g.id, ids).await?
                    }
                    MemberChange::Edit { add, remove } => {
                        for user in remove {
                            sqlx::query("DELETE FROM scim_members WHERE group_id = $1 AND user_id = $2")
                                .bind(&g.id)
                                .bind(user)
                                .execute(&mut *tx)
                                .await?;
                        }
                        add_members(&mut tx, &g.id, add).await?
                    }
                };
                if let Some(unknown) = unknown {
                    return Ok(WriteOutcome::UnknownMember(unknown));
                }
                tx.commit().await?;
                Ok(WriteOutcome::Done)
            }

            async fn delete_group(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM scim_members WHERE group_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM scim_groups WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn group_members(&self, group_id: &str) -> Result<Vec<String>, $crate::store::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT user_id FROM scim_members WHERE group_id = $1 ORDER BY added, user_id")
                        .bind(group_id)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn group_member_names(
                &self,
                group_id: &str,
            ) -> Result<Vec<(String, String)>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT u.id, u.user_name FROM scim_members m JOIN scim_users u ON u.id = m.user_id \
                     WHERE m.group_id = $1 ORDER BY m.added, m.user_id",
                )
                .bind(group_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        use sqlx::Row;
                        Ok((row.try_get("id")?, row.try_get("user_name")?))
                    })
                    .collect()
            }

            async fn groups_of_user(&self, user_id: &str) -> Result<Vec<(String, String)>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT g.id, g.display_name FROM scim_members m JOIN scim_groups g ON g.id = m.group_id \
                     WHERE m.user_id = $1 ORDER BY g.display_name, g.id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        use sqlx::Row;
                        Ok((row.try_get("id")?, row.try_get("display_name")?))
                    })
                    .collect()
            }

            async fn facts(
                &self,
                by_user_name: Option<&str>,
                by_external_id: Option<&str>,
            ) -> Result<Option<$crate::store::directory::DirectoryFacts>, $crate::store::StoreError> {
                let user = match (by_user_name, by_external_id) {
                    (Some(name), _) => self.find_user_by_name(name).await?,
                    (None, Some(external)) => self.find_user_by_external_id(external).await?,
                    (None, None) => None,
                };
                let Some(user) = user else {
                    return Ok(None);
                };
                let groups = self.groups_of_user(&user.id).await?.into_iter().map(|(_, name)| name).collect();
                Ok(Some($crate::store::directory::DirectoryFacts {
                    user_id: user.id,
                    active: user.active,
                    groups,
                    resource: user.resource,
                }))
            }
        }

        /// Adds members that exist; returns the first id that names no user.
        async fn add_members(
            tx: &mut sqlx::Transaction<'_, $db>,
            group_id: &str,
            members: &[String],
        ) -> Result<Option<String>, $crate::store::StoreError> {
            for user in members {
                let known: Option<String> = sqlx::query_scalar("SELECT id FROM scim_users WHERE id = $1")
                    .bind(user)
                    .fetch_optional(&mut **tx)
                    .await?;
                if known.is_none() {
                    return Ok(Some(user.clone()));
                }
                sqlx::query(
                    "INSERT INTO scim_members (group_id, user_id, added) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(group_id)
                .bind(user)
                .bind($crate::store::directory_sql::sequence())
                .execute(&mut **tx)
                .await?;
            }
            Ok(None)
        }
    };
}

pub(crate) use impl_directory;

use sqlx::Row;

use super::directory::{DirGroup, DirUser, WriteOutcome};
use super::StoreError;

/// A unique constraint is a conflict (a userName taken), not a failure.
pub(crate) fn outcome(result: Result<(), sqlx::Error>) -> Result<WriteOutcome, StoreError> {
    match result {
        Ok(()) => Ok(WriteOutcome::Done),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(WriteOutcome::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// An increasing number for membership order (time in microseconds; ties
/// fall back to the user id).
pub(crate) fn sequence() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn user_from<R: Row>(row: &R) -> Result<DirUser, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(DirUser {
        id: row.try_get("id")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        active: row.try_get("active")?,
        resource: row.try_get("resource")?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
        modified: row.try_get("modified")?,
    })
}

pub(crate) fn group_from<R: Row>(row: &R) -> Result<DirGroup, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    Ok(DirGroup {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        resource: row.try_get("resource")?,
        version: row.try_get("version")?,
        created: row.try_get("created")?,
        modified: row.try_get("modified")?,
    })
}
