//! The directory handle: the one path by which anything that changes who a
//! user is (SCIM pushes, operator revocation; shared signals later) writes
//! the directory or the sessions and makes live state follow.
//!
//! It sits below both its writers and `auth`: a writer gets a
//! [`DirectoryHandle`] holding the store's directory rows
//! ([`DirectoryStore`](crate::store::directory::DirectoryStore)), the clock
//! that stamps them, and a [`DirectoryNotifier`] to report each stored
//! change to. `auth` implements the notifier (ending and re-deriving
//! sessions on every replica), so a writer needs to know neither auth nor
//! sessions, and its tests can record the changes instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::clock::Clock;
use crate::store::{SessionKey, SessionSelector, SessionStore, Store, StoreError};

pub use crate::store::directory::DirectoryChange;

/// The doorward SCIM extension, where the IdP can push roles: written by
/// SCIM, read when a session's identity is derived from the directory.
pub const DOORWARD_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:doorward:2.0:User";

/// What a notifier returns: boxed, so the trait stays object-safe without
/// a macro crate.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Makes stored directory changes reach whatever depends on them.
pub trait DirectoryNotifier: Send + Sync {
    /// Applies `changes` (already stored). An error means the effect is not
    /// (wholly) applied: the writer must say so, so the change is retried.
    fn apply<'a>(&'a self, changes: &'a [DirectoryChange]) -> NotifyFuture<'a>;

    /// Sessions an operator ended (already deleted in the store, and every
    /// replica told): this process forgets them and whatever was derived
    /// from them, as for a deactivated user.
    fn sessions_revoked<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a>;

    /// Sessions whose stored record a writer rewrote (new claims, a
    /// posture): every replica derives them again on their next request.
    fn sessions_changed<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a>;

    /// A writer changed an account's state (a shared signal disabled or
    /// enabled it): verdicts made without a session (bearer tokens) are
    /// reached again, here and on every replica.
    fn accounts_changed(&self) -> NotifyFuture<'_>;
}

/// A notifier could not apply a change; its own error, kept for the log.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NotifyError(Box<dyn std::error::Error + Send + Sync>);

/// An operator's revocation failed: in the store (nothing, or not all,
/// ended), or in applying it here (ended, but this process may still hold
/// a cached copy until the store's notice arrives).
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

impl NotifyError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(cause))
    }
}

/// The directory as a writer sees it: its rows, its clock, and where its
/// changes go.
#[derive(Clone)]
pub struct DirectoryHandle {
    store: Store,
    clock: Clock,
    notifier: Arc<dyn DirectoryNotifier>,
}

impl DirectoryHandle {
    pub fn new(store: Store, clock: Clock, notifier: Arc<dyn DirectoryNotifier>) -> Self {
        Self { store, clock, notifier }
    }

    /// The directory's rows: use them through
    /// [`DirectoryStore`](crate::store::directory::DirectoryStore).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Reports stored changes to the notifier (nothing to report, no call).
    pub async fn notify(&self, changes: &[DirectoryChange]) -> Result<(), NotifyError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.notifier.apply(changes).await
    }

    /// Makes every replica derive these rewritten sessions again.
    pub async fn sessions_changed(&self, keys: &[SessionKey]) -> Result<(), NotifyError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.notifier.sessions_changed(keys).await
    }

    /// Makes every replica reach its session-less verdicts again.
    pub async fn accounts_changed(&self) -> Result<(), NotifyError> {
        self.notifier.accounts_changed().await
    }

    /// Ends the sessions an operator names, on every replica, and makes
    /// this process forget them; returns their keys. An empty selector
    /// ends nothing.
    pub async fn revoke_sessions(&self, selector: &SessionSelector) -> Result<Vec<SessionKey>, RevokeError> {
        let ended = self.store.revoke_sessions(selector).await?;
        if !ended.is_empty() {
            self.notifier.sessions_revoked(&ended).await?;
        }
        Ok(ended)
    }
}
