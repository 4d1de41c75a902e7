//! `/Users` (RFC 7644 §3.3-3.6), as a [`Collection`]: a user is one row
//! (its resource as JSON, with the columns the store looks up), and each
//! write is followed by the sessions it affects: a user who is active gets
//! their identity derived again on their next request; one who is not
//! (`active: false`, or deleted) has every session ended.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::collection::{self, Collection, Edit};
use super::definitions::Kind;
use super::discovery::printable;
use super::errors::ScimError;
use super::patch;
use super::render::{self, Projection};
use super::resource::{normalise, Source};
use crate::directory::{DirectoryChange, DirectoryHandle};
use crate::store::directory::{DirUser, DirectoryStore, WriteOutcome};
use crate::store::{Store, StoreError};

/// The `/Users` collection.
pub struct Users;

fn not_found(id: &str) -> ScimError {
    collection::not_found::<Users>(id)
}

fn taken(user_name: &str) -> ScimError {
    ScimError::Uniqueness(format!(
        "another user already has the userName `{}`",
        printable(user_name)
    ))
}

/// The row for a normalised resource.
fn row(id: &str, resource: &Map<String, Value>, created: i64, modified: i64, version: i64) -> DirUser {
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_string);
    DirUser {
        id: id.to_string(),
        user_name: text("userName").unwrap_or_default(),
        external_id: text("externalId"),
        // Unassigned means active: only an explicit false locks a user out.
        active: resource.get("active") != Some(&Value::Bool(false)),
        resource: Value::Object(resource.clone()).to_string(),
        version,
        created,
        modified,
    }
}

/// What a write did to a user's sessions. A rename reaches the sessions
/// matched by the old name too.
fn changes(before: Option<&DirUser>, after: &DirUser) -> Vec<DirectoryChange> {
    let change = |u: &DirUser| match after.active {
        true => DirectoryChange::User {
            user_name: u.user_name.clone(),
            external_id: u.external_id.clone(),
        },
        false => DirectoryChange::UserRemoved {
            user_name: u.user_name.clone(),
            external_id: u.external_id.clone(),
        },
    };
    let mut out = vec![change(after)];
    if let Some(before) = before {
        if !before.user_name.eq_ignore_ascii_case(&after.user_name) || before.external_id != after.external_id {
            out.push(change(before));
        }
    }
    out
}

impl Collection for Users {
    type Row = DirUser;
    const KIND: Kind = Kind::User;
    const ENDPOINT: &'static str = "Users";
    const NOUN: &'static str = "user";
    const PATCH_ANSWERS_EMPTY: bool = false;

    fn id(row: &DirUser) -> &str {
        &row.id
    }

    fn version(row: &DirUser) -> i64 {
        row.version
    }

    async fn load(store: &Store, id: &str) -> Result<Option<DirUser>, StoreError> {
        store.get_user(id).await
    }

    async fn create(dir: &DirectoryHandle, resource: Map<String, Value>) -> Result<DirUser, ScimError> {
        let now = dir.now();
        let user = row(&collection::new_id(), &resource, now, now, 1);
        match dir.store().create_user(&user).await? {
            WriteOutcome::Done => {}
            WriteOutcome::Conflict => return Err(taken(&user.user_name)),
            other => return Err(ScimError::InvalidValue(format!("the user was not created: {other:?}"))),
        }
        tracing::info!(id = %user.id, user = %user.user_name, active = user.active, "scim: user created");
        collection::notify(dir, &changes(None, &user)).await?;
        Ok(user)
    }

    async fn update(dir: &DirectoryHandle, id: &str, headers: &HeaderMap, edit: Edit) -> Result<DirUser, ScimError> {
        match edit {
            Edit::Replace(resource) => write(dir, id, headers, |_| Ok(resource.clone())).await,
            Edit::Patch(ops) => {
                write(dir, id, headers, |current| {
                    let mut doc = render::stored(&current.resource)?;
                    patch::apply(Kind::User, id, &mut doc, &ops, None)?;
                    normalise(Kind::User, &Value::Object(doc), Source::Patched)
                })
                .await
            }
        }
    }

    async fn remove(dir: &DirectoryHandle, user: DirUser) -> Result<(), ScimError> {
        if !dir.store().delete_user(&user.id).await? {
            return Err(not_found(&user.id));
        }
        tracing::info!(id = %user.id, user = %user.user_name, "scim: user deleted");
        // Sessions are found by the userName and externalId the user had.
        let gone = DirectoryChange::UserRemoved {
            user_name: user.user_name,
            external_id: user.external_id,
        };
        collection::notify(dir, &[gone]).await
    }

    async fn render(
        store: &Store,
        base: &str,
        user: &DirUser,
        projection: &Projection,
    ) -> Result<Map<String, Value>, ScimError> {
        let groups = match projection.wants("groups") {
            true => Some(store.groups_of_user(&user.id).await?),
            false => None,
        };
        render::user(base, user, groups.as_deref())
    }
}

/// Reads the user, computes its new resource, and stores it if the user
/// did not change meanwhile (else again, or 412 under `If-Match`).
async fn write<F>(dir: &DirectoryHandle, id: &str, headers: &HeaderMap, compute: F) -> Result<DirUser, ScimError>
where
    F: Fn(&DirUser) -> Result<Map<String, Value>, ScimError>,
{
    let compute = &compute;
    let (before, after) = collection::retrying(|| async move {
        let current = dir.store().get_user(id).await?.ok_or_else(|| not_found(id))?;
        let conditional = collection::precondition(headers, current.version)?;
        let resource = compute(&current)?;
        if render::stored(&current.resource)? == resource {
            // Nothing to store; the sessions still follow (an IdP
            // retrying a deactivation must not leave one alive).
            return Ok(Some((current.clone(), current)));
        }
        let next = row(id, &resource, current.created, dir.now(), current.version + 1);
        match dir.store().replace_user(&next, Some(current.version)).await? {
            WriteOutcome::Done => Ok(Some((current, next))),
            WriteOutcome::VersionMismatch if conditional => Err(ScimError::PreconditionFailed),
            WriteOutcome::VersionMismatch => Ok(None),
            WriteOutcome::Conflict => Err(taken(&next.user_name)),
            WriteOutcome::Missing => Err(not_found(id)),
            WriteOutcome::UnknownMember(_) => Err(ScimError::InvalidValue("unexpected member".into())),
        }
    })
    .await?;
    if after.version != before.version {
        tracing::info!(id = %after.id, user = %after.user_name, active = after.active, "scim: user updated");
    }
    collection::notify(dir, &changes(Some(&before), &after)).await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, ext: Option<&str>, active: bool) -> DirUser {
        DirUser {
            id: "u1".into(),
            user_name: name.into(),
            external_id: ext.map(str::to_string),
            active,
            resource: "{}".into(),
            version: 1,
            created: 0,
            modified: 0,
        }
    }

    #[test]
    fn active_users_are_rederived_and_inactive_ones_removed() {
        let after = user("alice", Some("e1"), true);
        assert_eq!(
            changes(None, &after),
            [DirectoryChange::User {
                user_name: "alice".into(),
                external_id: Some("e1".into())
            }]
        );
        let off = user("alice", Some("e1"), false);
        assert!(matches!(
            changes(Some(&after), &off).as_slice(),
            [DirectoryChange::UserRemoved { .. }]
        ));
    }

    #[test]
    fn a_rename_reaches_the_sessions_of_the_old_name() {
        let before = user("alice", None, true);
        let after = user("alice.smith", None, false);
        let names: Vec<String> = changes(Some(&before), &after)
            .into_iter()
            .map(|c| match c {
                DirectoryChange::UserRemoved { user_name, .. } => user_name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["alice.smith", "alice"]);
        assert_eq!(
            changes(Some(&user("ALICE", None, true)), &user("alice", None, true)).len(),
            1
        );
    }

    #[test]
    fn rows_take_their_columns_from_the_resource() {
        let Value::Object(resource) = serde_json::json!({"userName": "Bob", "externalId": "x", "active": false}) else {
            unreachable!()
        };
        let row = row("id", &resource, 1, 2, 3);
        assert_eq!(
            (row.user_name.as_str(), row.external_id.as_deref(), row.active),
            ("Bob", Some("x"), false)
        );
        let Value::Object(resource) = serde_json::json!({"userName": "Bob"}) else {
            unreachable!()
        };
        assert!(row_active(&resource));
    }

    fn row_active(resource: &Map<String, Value>) -> bool {
        row("id", resource, 0, 0, 1).active
    }
}
