//! `/Groups`, as a [`Collection`]. A group's JSON is one row and its
//! members are rows of their own, changed in the same transaction
//! ([`MemberChange`]); whoever joins or leaves, and every member when a
//! group is renamed or deleted, gets their identity derived again on their
//! next request.
//!
//! PATCH answers `204 No Content` (with the new `ETag`), as Entra ID
//! recommends for groups, whose member lists can be long; a client that
//! wants the group back asks with `attributes` or `excludedAttributes` and
//! gets `200` with it (RFC 7644 §3.5.2 allows both).

use http::HeaderMap;
use serde_json::{Map, Value};

use super::collection::{self, Collection, Edit};
use super::definitions::Kind;
use super::discovery::printable;
use super::errors::ScimError;
use super::members::{self, Member, MemberPlan};
use super::patch;
use super::render::{self, Projection};
use super::resource::{normalise, Source};
use crate::directory::{DirectoryChange, DirectoryHandle};
use crate::store::directory::{DirGroup, DirectoryStore, MemberChange, WriteOutcome};
use crate::store::{Store, StoreError};

/// The `/Groups` collection.
pub struct Groups;

fn not_found(id: &str) -> ScimError {
    collection::not_found::<Groups>(id)
}

fn outcome_error(outcome: WriteOutcome, id: &str) -> ScimError {
    match outcome {
        WriteOutcome::UnknownMember(member) => ScimError::InvalidValue(format!(
            "no user has id `{}` (members must be users)",
            printable(&member)
        )),
        WriteOutcome::Missing => not_found(id),
        WriteOutcome::Conflict => ScimError::Uniqueness("the group conflicts with another one".into()),
        WriteOutcome::VersionMismatch => ScimError::PreconditionFailed,
        WriteOutcome::Done => ScimError::InvalidValue("unexpected outcome".into()),
    }
}

/// The members a body names, taken out of the resource (they are rows).
fn take_members(resource: &mut Map<String, Value>) -> Result<Vec<String>, ScimError> {
    members::ids(&resource.remove("members").unwrap_or(Value::Null))
}

fn row(id: &str, resource: &Map<String, Value>, created: i64, modified: i64, version: i64) -> DirGroup {
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_string);
    DirGroup {
        id: id.to_string(),
        display_name: text("displayName").unwrap_or_default(),
        external_id: text("externalId"),
        resource: Value::Object(resource.clone()).to_string(),
        version,
        created,
        modified,
    }
}

impl Collection for Groups {
    type Row = DirGroup;
    const KIND: Kind = Kind::Group;
    const ENDPOINT: &'static str = "Groups";
    const NOUN: &'static str = "group";
    const PATCH_ANSWERS_EMPTY: bool = true;

    fn id(row: &DirGroup) -> &str {
        &row.id
    }

    fn version(row: &DirGroup) -> i64 {
        row.version
    }

    async fn load(store: &Store, id: &str) -> Result<Option<DirGroup>, StoreError> {
        store.get_group(id).await
    }

    async fn create(dir: &DirectoryHandle, mut resource: Map<String, Value>) -> Result<DirGroup, ScimError> {
        let members = take_members(&mut resource)?;
        let now = dir.now();
        let group = row(&collection::new_id(), &resource, now, now, 1);
        match dir.store().create_group(&group, &members).await? {
            WriteOutcome::Done => {}
            other => return Err(outcome_error(other, &group.id)),
        }
        tracing::info!(id = %group.id, group = %group.display_name, members = members.len(), "scim: group created");
        collection::notify(dir, &[DirectoryChange::Members { user_ids: members }]).await?;
        Ok(group)
    }

    async fn update(dir: &DirectoryHandle, id: &str, headers: &HeaderMap, edit: Edit) -> Result<DirGroup, ScimError> {
        match edit {
            Edit::Replace(mut resource) => {
                let members = take_members(&mut resource)?;
                write(dir, id, headers, false, |_, _| {
                    Ok((resource.clone(), MemberChange::Set(members.clone())))
                })
                .await
            }
            Edit::Patch(ops) => {
                write(dir, id, headers, patch::needs_members(&ops), |current, members| {
                    let mut doc = render::stored(&current.resource)?;
                    let mut plan = MemberPlan::new(members);
                    patch::apply(Kind::Group, id, &mut doc, &ops, Some(&mut plan))?;
                    let resource = normalise(Kind::Group, &Value::Object(doc), Source::Patched)?;
                    Ok((resource, plan.into_change()))
                })
                .await
            }
        }
    }

    async fn remove(dir: &DirectoryHandle, group: DirGroup) -> Result<(), ScimError> {
        let store = dir.store();
        let members = store.group_members(&group.id).await?;
        if !store.delete_group(&group.id).await? {
            return Err(not_found(&group.id));
        }
        tracing::info!(id = %group.id, group = %group.display_name, members = members.len(), "scim: group deleted");
        collection::notify(dir, &[DirectoryChange::Members { user_ids: members }]).await
    }

    async fn render(
        store: &Store,
        base: &str,
        group: &DirGroup,
        projection: &Projection,
    ) -> Result<Map<String, Value>, ScimError> {
        let members = match projection.wants("members") {
            true => Some(store.group_member_names(&group.id).await?),
            false => None,
        };
        let display = projection.requests("members", "display");
        render::group(base, group, members.as_deref(), display)
    }
}

/// Reads the group, computes its new resource and members change, and
/// stores both in one transaction if the group did not change meanwhile
/// (else again, or 412 under `If-Match`). Returns the group as stored.
async fn write<F>(
    dir: &DirectoryHandle,
    id: &str,
    headers: &HeaderMap,
    with_members: bool,
    compute: F,
) -> Result<DirGroup, ScimError>
where
    F: Fn(&DirGroup, Option<Vec<Member>>) -> Result<(Map<String, Value>, MemberChange), ScimError>,
{
    let compute = &compute;
    let (group, affected) = collection::retrying(|| async move {
        let store = dir.store();
        let current = store.get_group(id).await?.ok_or_else(|| not_found(id))?;
        let conditional = collection::precondition(headers, current.version)?;
        let members = match with_members {
            true => Some(store.group_member_names(id).await?),
            false => None,
        };
        let (resource, change) = compute(&current, members)?;
        if render::stored(&current.resource)? == resource && change == MemberChange::None {
            return Ok(Some((current, Vec::new())));
        }
        let next = row(id, &resource, current.created, dir.now(), current.version + 1);
        let renamed = next.display_name != current.display_name;
        // Who must see the change: whoever joined or left; everyone
        // (before and after) when the list is replaced or the name changes.
        let mut affected = match (&change, renamed) {
            (MemberChange::Edit { add, remove }, false) => add.iter().chain(remove).cloned().collect(),
            (MemberChange::None, false) => Vec::new(),
            (change, _) => {
                let mut all = store.group_members(id).await?;
                match change {
                    MemberChange::Set(new) => all.extend(new.iter().cloned()),
                    MemberChange::Edit { add, .. } => all.extend(add.iter().cloned()),
                    MemberChange::None => {}
                }
                all
            }
        };
        affected.sort();
        affected.dedup();
        match store.update_group(&next, Some(current.version), &change).await? {
            WriteOutcome::Done => Ok(Some((next, affected))),
            WriteOutcome::VersionMismatch if !conditional => Ok(None),
            other => Err(outcome_error(other, id)),
        }
    })
    .await?;
    if !affected.is_empty() {
        tracing::info!(id = %group.id, group = %group.display_name, affected = affected.len(), "scim: group updated");
        collection::notify(dir, &[DirectoryChange::Members { user_ids: affected }]).await?;
    }
    Ok(group)
}
