//! The SCIM directory's rows: users, groups and memberships, as the IdP
//! pushed them. The SCIM module owns what a resource means; the store keeps
//! each as a JSON document with the few columns it must look up or keep
//! unique, a version for `ETag`/`If-Match`, and memberships as rows of
//! their own (so two PATCHes adding members to one group cannot lose one).

use std::future::Future;

use super::StoreError;

/// A SCIM user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirUser {
    pub id: String,
    /// As sent; unique ignoring case (RFC 7643: userName is caseExact false).
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    /// The whole resource as JSON (without `meta`, `id` and `groups`).
    pub resource: String,
    pub version: i64,
    pub created: i64,
    pub modified: i64,
}

/// A SCIM group as stored (members are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGroup {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The resource as JSON (without `meta`, `id` and `members`).
    pub resource: String,
    pub version: i64,
    pub created: i64,
    pub modified: i64,
}

/// How a group's members change in one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// No change to members.
    None,
    /// Exactly these members (PUT, or a PATCH replacing them).
    Set(Vec<String>),
    /// These added, these removed (PATCH add/remove).
    Edit { add: Vec<String>, remove: Vec<String> },
}

/// Why a directory write did not happen (besides a store failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// No such resource.
    Missing,
    /// The resource changed since the version the caller expected.
    VersionMismatch,
    /// Another resource already has this userName / displayName.
    Conflict,
    /// A member id names no user.
    UnknownMember(String),
}

/// What the directory says about one user, for their live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryFacts {
    pub user_id: String,
    pub active: bool,
    /// Display names of the groups the user is a member of.
    pub groups: Vec<String>,
    /// The whole user resource (for roles and other extension values).
    pub resource: String,
}

/// What every backend provides for the directory.
pub trait DirectoryStore: Send + Sync {
    fn create_user(&self, user: &DirUser) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    fn get_user(&self, id: &str) -> impl Future<Output = Result<Option<DirUser>, StoreError>> + Send;
    /// By userName, ignoring case.
    fn find_user_by_name(&self, user_name: &str) -> impl Future<Output = Result<Option<DirUser>, StoreError>> + Send;
    fn find_user_by_external_id(
        &self,
        external_id: &str,
    ) -> impl Future<Output = Result<Option<DirUser>, StoreError>> + Send;
    /// Every user, ordered by creation (for filters that need a scan).
    fn list_users(&self) -> impl Future<Output = Result<Vec<DirUser>, StoreError>> + Send;
    /// A page of users in creation order (no filter): `offset` from 0.
    fn page_users(
        &self,
        offset: i64,
        limit: i64,
    ) -> impl Future<Output = Result<(Vec<DirUser>, i64), StoreError>> + Send;
    /// Replaces a user; with `expected` set, only if its version is that.
    fn replace_user(
        &self,
        user: &DirUser,
        expected: Option<i64>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    /// Deletes a user and their memberships.
    fn delete_user(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn create_group(
        &self,
        group: &DirGroup,
        members: &[String],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    fn get_group(&self, id: &str) -> impl Future<Output = Result<Option<DirGroup>, StoreError>> + Send;
    fn find_group_by_name(
        &self,
        display_name: &str,
    ) -> impl Future<Output = Result<Option<DirGroup>, StoreError>> + Send;
    fn list_groups(&self) -> impl Future<Output = Result<Vec<DirGroup>, StoreError>> + Send;
    /// Replaces a group's resource (with `expected`, only at that version)
    /// and changes its members, in one transaction; bumps its version.
    fn update_group(
        &self,
        group: &DirGroup,
        expected: Option<i64>,
        members: &MemberChange,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    fn delete_group(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Member user ids, in the order they were added.
    fn group_members(&self, group_id: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// (user id, userName) of a group's members, in the order they were
    /// added: what a group resource lists, in one query however long.
    fn group_member_names(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// (group id, display name) of every group a user is in.
    fn groups_of_user(&self, user_id: &str) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// What the directory says about the user whose userName (ignoring
    /// case) or externalId is `key`, for deriving a session's identity.
    fn facts(
        &self,
        by_user_name: Option<&str>,
        by_external_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<DirectoryFacts>, StoreError>> + Send;
}

/// What a directory write changed, for the sessions of the users it
/// touched (writers report these through the directory handle; `auth`
/// applies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    /// A user's resource changed (roles, attributes, reactivation): their
    /// sessions derive their identity again on the next request.
    User {
        user_name: String,
        external_id: Option<String>,
    },
    /// Deactivated (`active = false`) or deleted: their sessions end at once.
    UserRemoved {
        user_name: String,
        external_id: Option<String>,
    },
    /// These users' group memberships changed (ids of users that exist).
    Members { user_ids: Vec<String> },
}

/// The match key of a login of `provider` (the directory's own) found by
/// userName (ignoring case). The provider is part of the key, so a key of
/// another provider's login can never equal it.
pub fn key_for_user_name(provider: &str, user_name: &str) -> String {
    format!("name@{provider}:{}", user_name.to_lowercase())
}

/// The match key of a login of `provider` found by externalId.
pub fn key_for_external_id(provider: &str, external_id: &str) -> String {
    format!("ext@{provider}:{external_id}")
}

/// The value a match key of `kind` looks up: `kind@provider:value`, or
/// `kind:value` in sessions made before keys named their provider (a
/// provider name has no `:`).
fn key_value<'a>(match_key: &'a str, kind: &str) -> Option<&'a str> {
    let rest = match_key.strip_prefix(kind)?;
    match rest.strip_prefix('@') {
        Some(bound) => bound.split_once(':').map(|(_, value)| value),
        None => rest.strip_prefix(':'),
    }
}

/// The facts for a session's match key. Whether they apply to the session
/// (its provider is the directory's) is the caller's business.
pub async fn facts_for<S: DirectoryStore>(store: &S, match_key: &str) -> Result<Option<DirectoryFacts>, StoreError> {
    match (key_value(match_key, "name"), key_value(match_key, "ext")) {
        (Some(name), _) => store.facts(Some(name), None).await,
        (None, Some(external)) => store.facts(None, Some(external)).await,
        _ => Ok(None),
    }
}
