//! Directory changes reach live sessions: a deactivated or deleted user's
//! sessions end at once on every replica, and a user whose groups or roles
//! changed gets a freshly derived identity on their very next request.
//! Sessions are found by their match key (the login's userName or
//! externalId, as `[scim] match_on` says).

use super::{Auth, AuthError};
use crate::respond::Denial;
use crate::store::directory::{facts_for, key_for_external_id, key_for_user_name, DirectoryChange, DirectoryStore};
use crate::store::SessionStore;

impl Auth {
    /// The directory key a login matches, when SCIM is on.
    pub(super) fn match_key(&self, claims: &crate::identity::Claims, subject: &str) -> Option<String> {
        let on = self.directory_match?;
        let value = match on {
            crate::config::MatchOn::Email => claims.get("email").and_then(|v| v.as_str()),
            crate::config::MatchOn::PreferredUsername => claims.get("preferred_username").and_then(|v| v.as_str()),
            crate::config::MatchOn::Subject => Some(subject),
        }?;
        Some(match on {
            crate::config::MatchOn::Subject => key_for_external_id(value),
            _ => key_for_user_name(value),
        })
    }

    /// The directory's say on a login: a deactivated user (or, with
    /// `require_provisioned`, one the IdP never provisioned) is refused.
    /// Returns the match key the session will carry. `account` is the
    /// name a refusal page shows.
    pub(super) async fn directory_admits(
        &self,
        claims: &crate::identity::Claims,
        subject: &str,
        account: &str,
    ) -> Result<Option<String>, AuthError> {
        let Some(key) = self.match_key(claims, subject) else {
            return Ok(None);
        };
        match facts_for(self.sessions.store(), &key).await? {
            Some(facts) if !facts.active => Err(AuthError::LoginDenied(Denial {
                account: account.to_string(),
                reason: format!("user `{subject}` is deactivated in the SCIM directory"),
            })),
            None if self.require_provisioned => Err(AuthError::LoginDenied(Denial {
                account: account.to_string(),
                reason: format!("user `{subject}` is not provisioned in the SCIM directory"),
            })),
            _ => Ok(Some(key)),
        }
    }

    /// Applies what a directory write changed to the sessions it touched,
    /// and to every verdict derived from the directory: bearer verdicts
    /// (cached by token hash, not by user) are all reached again, here and,
    /// through the store's notice, on every other replica.
    pub async fn apply_directory_changes(&self, changes: &[DirectoryChange]) -> Result<(), AuthError> {
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
                    for key in match_keys(user_name, external_id.as_deref()) {
                        let ended = store.delete_sessions_of(&key).await?;
                        for session in &ended {
                            self.sessions.forget(session).await;
                        }
                        if !ended.is_empty() {
                            tracing::info!(user = %user_name, ended = ended.len(), "directory: user deactivated or deleted; sessions ended");
                        }
                    }
                }
                DirectoryChange::User { user_name, external_id } => {
                    self.rederive(user_name, external_id.as_deref()).await?;
                }
                DirectoryChange::Members { user_ids } => {
                    for id in user_ids {
                        if let Some(user) = store.get_user(id).await? {
                            self.rederive(&user.user_name, user.external_id.as_deref()).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn rederive(&self, user_name: &str, external_id: Option<&str>) -> Result<(), AuthError> {
        let store = self.sessions.store();
        for key in match_keys(user_name, external_id) {
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

/// The keys a directory user's sessions may carry.
fn match_keys(user_name: &str, external_id: Option<&str>) -> Vec<String> {
    let mut keys = vec![key_for_user_name(user_name)];
    keys.extend(external_id.map(key_for_external_id));
    keys
}
