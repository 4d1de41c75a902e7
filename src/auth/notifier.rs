//! `auth`'s side of the directory handle: stored directory changes end
//! or refresh the sessions they touch, on every replica (see
//! [`Auth::apply_directory_changes`]), and sessions an operator revoked are
//! forgotten here at once. Whoever writes the directory gets a
//! [`DirectoryHandle`] from here and never sees `Auth` itself.

use std::sync::Arc;

use super::Auth;
use crate::directory::{DirectoryChange, DirectoryHandle, DirectoryNotifier, NotifyError, NotifyFuture};
use crate::store::{SessionKey, SessionStore};

impl DirectoryNotifier for Auth {
    fn apply<'a>(&'a self, changes: &'a [DirectoryChange]) -> NotifyFuture<'a> {
        Box::pin(async move { self.apply_directory_changes(changes).await.map_err(NotifyError::new) })
    }

    fn sessions_revoked<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a> {
        Box::pin(async move {
            // As for a deactivated user: verified bearer tokens are cached
            // by hash, not by user, so none may outlive the revocation.
            self.bearer.cache.invalidate_all();
            for key in keys {
                self.sessions.forget(key).await;
            }
            Ok(())
        })
    }

    fn accounts_changed(&self) -> NotifyFuture<'_> {
        Box::pin(async move {
            self.sessions.generation().bump_directory();
            self.bearer.cache.invalidate_all();
            self.sessions
                .store()
                .announce_directory()
                .await
                .map_err(NotifyError::new)
        })
    }

    fn sessions_changed<'a>(&'a self, keys: &'a [SessionKey]) -> NotifyFuture<'a> {
        Box::pin(async move {
            for key in keys {
                self.sessions.invalidate(key).await;
            }
            self.sessions
                .store()
                .announce_changed(keys)
                .await
                .map_err(NotifyError::new)
        })
    }
}

impl Auth {
    /// The directory over this deployment's store and clock, its changes
    /// applied to these sessions.
    pub fn directory_handle(self: &Arc<Self>) -> DirectoryHandle {
        let notifier: Arc<dyn DirectoryNotifier> = Arc::<Self>::clone(self);
        DirectoryHandle::new(self.sessions.store().clone(), self.clock.clone(), notifier)
    }
}
