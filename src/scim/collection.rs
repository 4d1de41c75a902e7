//! The resource endpoints, written once for both collections (RFC 7644
//! §3.3-3.6): create, read, replace, patch and delete. What differs
//! between `/Users` and `/Groups` (their rows, how a write is stored, what
//! it changes for sessions, how a row is rendered) is the [`Collection`]
//! each implements, in `users` and `groups`.
//!
//! Every write is checked whole before it is stored (nothing partial is
//! stored), conditional on the version it was computed from (so two
//! writers cannot lose each other's changes), and reported through the
//! [`DirectoryHandle`] so the sessions it affects follow.

use std::future::Future;
use std::time::Duration;

use http::header::IF_NONE_MATCH;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::definitions::Kind;
use super::discovery::printable;
use super::errors::ScimError;
use super::patch::{self, Operation};
use super::render::Projection;
use super::reply;
use super::resource::{normalise, Source};
use crate::directory::{DirectoryChange, DirectoryHandle};
use crate::respond::Reply;
use crate::store::{Store, StoreError};

/// Query parameters, as pairs.
pub type Params = [(String, String)];

/// Tries a write loses to concurrent ones before answering 409.
const MAX_ATTEMPTS: usize = 64;

/// What a PUT or PATCH asks of a stored resource.
pub enum Edit {
    /// PUT: this resource, checked and normalised.
    Replace(Map<String, Value>),
    /// PATCH: these operations, applied to the stored resource.
    Patch(Vec<Operation>),
}

impl Edit {
    /// A PUT body of `kind`, checked whole before anything is read.
    pub fn replace(kind: Kind, body: &Value) -> Result<Self, ScimError> {
        Ok(Self::Replace(normalise(kind, body, Source::Body)?))
    }

    /// A PATCH body (a PatchOp request).
    pub fn patch(body: &Value) -> Result<Self, ScimError> {
        Ok(Self::Patch(patch::parse_request(body)?))
    }
}

/// What differs between `/Users` and `/Groups`.
pub trait Collection {
    type Row: Send + Sync;
    const KIND: Kind;
    /// The endpoint's path segment (`Users`), for `Location`.
    const ENDPOINT: &'static str;
    /// What one resource is called in messages (`user`).
    const NOUN: &'static str;
    /// Whether a PATCH answers `204` unless the client asks for attributes.
    const PATCH_ANSWERS_EMPTY: bool;

    fn id(row: &Self::Row) -> &str;
    fn version(row: &Self::Row) -> i64;
    fn load(store: &Store, id: &str) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    /// Stores a new resource (checked and normalised) and reports it.
    fn create(
        dir: &DirectoryHandle,
        resource: Map<String, Value>,
    ) -> impl Future<Output = Result<Self::Row, ScimError>> + Send;
    /// Applies `edit` to the resource at `id` (retrying lost races, 412
    /// under `If-Match`), reports it, and returns the row as stored.
    fn update(
        dir: &DirectoryHandle,
        id: &str,
        headers: &HeaderMap,
        edit: Edit,
    ) -> impl Future<Output = Result<Self::Row, ScimError>> + Send;
    /// Deletes the resource (already read and its precondition checked)
    /// and reports it.
    fn remove(dir: &DirectoryHandle, row: Self::Row) -> impl Future<Output = Result<(), ScimError>> + Send;
    /// The resource, with what `projection` asks of the store beside it.
    fn render(
        store: &Store,
        base: &str,
        row: &Self::Row,
        projection: &Projection,
    ) -> impl Future<Output = Result<Map<String, Value>, ScimError>> + Send;
}

pub fn not_found<C: Collection>(id: &str) -> ScimError {
    ScimError::NotFound(format!("no {} has id `{}`", C::NOUN, printable(id)))
}

pub async fn create<C: Collection>(
    dir: &DirectoryHandle,
    base: &str,
    body: &Value,
    params: &Params,
) -> Result<Reply, ScimError> {
    let resource = normalise(C::KIND, body, Source::Body)?;
    let row = C::create(dir, resource).await?;
    answer::<C>(dir, base, &row, params, StatusCode::CREATED).await
}

pub async fn get<C: Collection>(
    dir: &DirectoryHandle,
    base: &str,
    id: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Reply, ScimError> {
    let row = C::load(dir.store(), id).await?.ok_or_else(|| not_found::<C>(id))?;
    let version = C::version(&row);
    if reply::names_version(headers, IF_NONE_MATCH, version) == Some(true) {
        return Ok(reply::not_modified(version));
    }
    answer::<C>(dir, base, &row, params, StatusCode::OK).await
}

/// PUT or PATCH.
pub async fn edit<C: Collection>(
    dir: &DirectoryHandle,
    base: &str,
    id: &str,
    headers: &HeaderMap,
    edit: Edit,
    params: &Params,
) -> Result<Reply, ScimError> {
    let patched = matches!(edit, Edit::Patch(_));
    let row = C::update(dir, id, headers, edit).await?;
    if patched && C::PATCH_ANSWERS_EMPTY && !Projection::from_params(C::KIND, params)?.is_set() {
        return Ok(reply::no_content(Some(C::version(&row))));
    }
    answer::<C>(dir, base, &row, params, StatusCode::OK).await
}

pub async fn delete<C: Collection>(dir: &DirectoryHandle, id: &str, headers: &HeaderMap) -> Result<Reply, ScimError> {
    let row = C::load(dir.store(), id).await?.ok_or_else(|| not_found::<C>(id))?;
    precondition(headers, C::version(&row))?;
    C::remove(dir, row).await?;
    Ok(reply::no_content(None))
}

/// One resource, rendered and cut as asked, with its `ETag` (and
/// `Location` when created).
async fn answer<C: Collection>(
    dir: &DirectoryHandle,
    base: &str,
    row: &C::Row,
    params: &Params,
    status: StatusCode,
) -> Result<Reply, ScimError> {
    let projection = Projection::from_params(C::KIND, params)?;
    let resource = C::render(dir.store(), base, row, &projection).await?;
    let location = (status == StatusCode::CREATED).then(|| format!("{base}/{}/{}", C::ENDPOINT, C::id(row)));
    let body = Value::Object(projection.apply(C::KIND, resource));
    Ok(reply::resource(status, &body, C::version(row), location.as_deref()))
}

/// A new resource id: 128 random bits, as hex.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What `If-Match` says about a write to a resource now at `version`:
/// `Ok(true)` when it named that version (a later mismatch is a 412),
/// `Ok(false)` when it is absent (a later mismatch is retried), and 412
/// when it names another version.
pub fn precondition(headers: &HeaderMap, version: i64) -> Result<bool, ScimError> {
    match reply::names_version(headers, http::header::IF_MATCH, version) {
        None => Ok(false),
        Some(true) => Ok(true),
        Some(false) => Err(ScimError::PreconditionFailed),
    }
}

/// Makes a stored change reach the sessions it affects.
pub async fn notify(dir: &DirectoryHandle, changes: &[DirectoryChange]) -> Result<(), ScimError> {
    dir.notify(changes).await.map_err(|e| {
        tracing::error!(error = %e, "scim: the write is stored but sessions could not follow it; the IdP will retry");
        ScimError::Sessions(e)
    })
}

/// Runs `attempt` until it stops losing to concurrent writes. An attempt
/// returns `Ok(None)` when it lost (the version changed between its read
/// and its write) and should run again.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ScimError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ScimError>>,
{
    for round in 0..MAX_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        // A little jitter, so writers that collided do not collide again.
        let pause = 1 + (rand::random::<u64>() % 3) * u64::try_from(round.min(4)).unwrap_or(4);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(ScimError::Busy)
}
