//! Directory changes reach live sessions: a deactivated or deleted user's
//! sessions end at once on every replica, and a user whose groups or roles
//! changed gets a freshly derived identity on their very next request.
//! Sessions are found by their match key (the login's userName or
//! externalId, as `[scim] match_on` says, under the directory's provider:
//! see [`super::provenance`]).

use super::{Auth, AuthError};
use crate::identity::Claims;
use crate::respond::Denial;
use crate::store::directory::{facts_for, DirectoryChange, DirectoryFacts, DirectoryStore};
use crate::store::{SessionStore, StoreError};

/// What the directory says of one login (session or bearer token).
#[derive(Default)]
pub(super) struct DirectoryMatch {
    /// The key a session carries, so directory changes reach it.
    pub key: Option<String>,
    pub facts: Option<DirectoryFacts>,
}

/// Why the directory has no say on a login it should have one on.
pub(super) enum Unmatched {
    /// The directory could not be read: nobody is let through unchecked.
    Unavailable(StoreError),
    /// `require_provisioned`, and the directory does not know this login.
    NotProvisioned(String),
}

impl Auth {
    /// The directory's user for a login of `provider`. Another provider's
    /// login has none (and `require_provisioned` is not about it).
    pub(super) async fn directory_match(
        &self,
        provider: &str,
        claims: &Claims,
        subject: &str,
    ) -> Result<DirectoryMatch, Unmatched> {
        let Some(binding) = self.directory.as_ref().filter(|b| b.binds(provider)) else {
            return Ok(DirectoryMatch::default());
        };
        let Some(key) = binding.key(provider, claims, subject) else {
            if binding.require_provisioned {
                return Err(Unmatched::NotProvisioned(format!(
                    "user `{subject}` of `{provider}` has no `{}` to find a directory user by",
                    binding.claim_name()
                )));
            }
            return Ok(DirectoryMatch::default());
        };
        let facts = facts_for(self.sessions.store(), &key)
            .await
            .map_err(Unmatched::Unavailable)?;
        if facts.is_none() && binding.require_provisioned {
            return Err(Unmatched::NotProvisioned(format!(
                "user `{subject}` of `{provider}` is not provisioned in the SCIM directory"
            )));
        }
        Ok(DirectoryMatch { key: Some(key), facts })
    }

    /// The directory's say on a login: a deactivated user (or, with
    /// `require_provisioned`, one the IdP never provisioned) is refused;
    /// an unreadable directory is a 503, never a session. Returns the
    /// match key the session will carry. `account` is the name a refusal
    /// page shows.
    pub(super) async fn directory_admits(
        &self,
        provider: &str,
        claims: &Claims,
        subject: &str,
        account: &str,
    ) -> Result<Option<String>, AuthError> {
        let denied = |reason| {
            AuthError::LoginDenied(Denial {
                account: account.to_string(),
                reason,
            })
        };
        match self.directory_match(provider, claims, subject).await {
            Err(Unmatched::Unavailable(e)) => Err(AuthError::StoreUnavailable(e)),
            Err(Unmatched::NotProvisioned(reason)) => Err(denied(reason)),
            Ok(found) if found.facts.as_ref().is_some_and(|f| !f.active) => {
                Err(denied(format!("user `{subject}` is deactivated in the SCIM directory")))
            }
            Ok(found) => Ok(found.key),
        }
    }

    /// Applies what a directory write changed to the sessions it touched,
    /// and to every verdict derived from the directory: bearer verdicts
    /// (cached by token hash, not by user) are all reached again, here and,
    /// through the store's notice, on every other replica.
    pub async fn apply_directory_changes(&self, changes: &[DirectoryChange]) -> Result<(), AuthError> {
        let Some(binding) = &self.directory else {
            return Ok(());
        };
        if changes.is_empty() {
            return Ok(());
        }
        // First: from here on no verdict derived before this change is served.
        self.sessions.generation().bump_directory();
        self.sessions.store().announce_directory().await?;
        let store = self.sessions.store();
        for change in changes {
            match change {
                DirectoryChange::UserRemoved { user_name, external_id } => {
                    for key in binding.keys_of(user_name, external_id.as_deref()) {
                        let ended = store.delete_sessions_of(&key).await?;
                        for session in &ended {
                            self.sessions.forget(session).await;
                        }
                        if !ended.is_empty() {
                            tracing::info!(user = %user_name, ended = ended.len(), "directory: user deactivated or deleted; sessions ended");
                            crate::audit!(
                                crate::audit::Kind::SessionEnded,
                                by = "scim",
                                user = %user_name,
                                count = ended.len(),
                                reason = "deactivated or deleted in the directory",
                            );
                        }
                    }
                }
                DirectoryChange::User { user_name, external_id } => {
                    self.rederive(binding.keys_of(user_name, external_id.as_deref()))
                        .await?;
                }
                DirectoryChange::Members { user_ids } => {
                    for id in user_ids {
                        if let Some(user) = store.get_user(id).await? {
                            self.rederive(binding.keys_of(&user.user_name, user.external_id.as_deref()))
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn rederive(&self, keys: Vec<String>) -> Result<(), AuthError> {
        let store = self.sessions.store();
        for key in keys {
            let sessions = store.sessions_of(&key).await?;
            for session in &sessions {
                self.sessions.invalidate(session).await;
            }
            if !sessions.is_empty() {
                store.announce_changed(&sessions).await?;
            }
        }
        Ok(())
    }
}
