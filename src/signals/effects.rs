//! What each event does. Everything goes through the directory handle, the
//! one path by which identity changes: sessions are ended with the store's
//! revocation (every replica told, tunnels closed by the access watcher),
//! and rewritten sessions (new claims, a posture) are announced so every
//! replica derives them again. Events about one subject take effect in the
//! order they happened (`event_timestamp`, else `iat`): each fact keeps the
//! time of the event that set it, and an older event never overwrites it.

use crate::access::posture::{Assurance, DeviceCompliance, Posture};
use crate::directory::{DirectoryHandle, NotifyError, RevokeError};
use crate::snapshot_member::SnapshotMember;
use crate::store::signals::{AccountState, SignalStore};
use crate::store::{SessionKey, SessionStore, StoreError};

use super::events::{Compliance, Event};
use super::set::SecurityEvent;
use super::targets::{targets, Target};

/// What an event did, for the log, the metrics and the poll answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Sessions ended and/or rewritten.
    Applied { ended: usize, changed: usize },
    /// Understood, nothing to do (the reason is logged).
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

impl From<RevokeError> for EffectError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::Store(e) => Self::Store(e),
            RevokeError::Notify(e) => Self::Notify(e),
        }
    }
}

/// The receiver's settings an effect needs.
pub struct Scope<'a> {
    pub provider: &'a str,
    pub directory: &'a DirectoryHandle,
    pub skew: i64,
    pub end_on_credential_change: bool,
}

/// How an account-level event changes the account's state.
enum AccountChange {
    Disable,
    Enable,
}

pub async fn apply(scope: &Scope<'_>, set: &SecurityEvent) -> Result<Effect, EffectError> {
    let Some(subject) = &set.subject else {
        return Ok(Effect::Ignored("the event names no subject".into()));
    };
    let found = targets(subject, scope.provider);
    if found.is_empty() {
        return Ok(Effect::Ignored(
            "the subject names no user or session doorward can match".into(),
        ));
    }
    let at = set.occurred_at;
    match &set.event {
        Event::SessionRevoked | Event::SessionsRevoked => end(scope, &found, Some(at)).await,
        Event::CredentialChange { .. } if scope.end_on_credential_change => end(scope, &found, Some(at)).await,
        Event::CredentialChange { .. } => Ok(Effect::Ignored(
            "credential-change: sessions kept (end_sessions_on_credential_change = false)".into(),
        )),
        Event::AccountDisabled { .. } | Event::AccountPurged | Event::CredentialCompromise { .. } => {
            account(scope, &found, set, AccountChange::Disable).await
        }
        Event::AccountEnabled => account(scope, &found, set, AccountChange::Enable).await,
        Event::TokenClaimsChange { claims, .. } => {
            rewrite(scope, &found, |posture, snapshot| {
                if posture.claims_changed_at.is_some_and(|seen| seen > at) {
                    return false;
                }
                posture.claims_changed_at = Some(at);
                if let Some(merged) = snapshot.get_mut("merged").and_then(|m| m.as_object_mut()) {
                    for (name, value) in claims {
                        merged.insert(name.clone(), value.clone());
                    }
                }
                true
            })
            .await
        }
        Event::AssuranceLevelChange {
            namespace,
            current_level,
            ..
        } => {
            rewrite(scope, &found, |posture, _| {
                if posture.assurance.as_ref().is_some_and(|a| a.at > at) {
                    return false;
                }
                posture.assurance = Some(Assurance {
                    namespace: namespace.0.clone(),
                    level: current_level.0.clone(),
                    at,
                });
                true
            })
            .await
        }
        Event::DeviceComplianceChange { current_status, .. } => {
            rewrite(scope, &found, |posture, _| {
                if posture.device.as_ref().is_some_and(|d| d.at > at) {
                    return false;
                }
                posture.device = Some(DeviceCompliance {
                    compliant: *current_status == Compliance::Compliant,
                    at,
                });
                true
            })
            .await
        }
        other => Ok(Effect::Ignored(format!("`{}` changes no session", other.name()))),
    }
}

/// Ends the sessions the targets name (made no later than `made_by`, when
/// given: an event about a user's sessions does not reach a login made
/// after it).
async fn end(scope: &Scope<'_>, found: &[Target], made_by: Option<i64>) -> Result<Effect, EffectError> {
    let mut ended = 0;
    for target in found {
        let mut selector = target.sessions.clone();
        selector.created_by = made_by.map(|at| at + scope.skew);
        ended += scope.directory.revoke_sessions(&selector).await?.len();
    }
    Ok(Effect::Applied { ended, changed: 0 })
}

async fn account(
    scope: &Scope<'_>,
    found: &[Target],
    set: &SecurityEvent,
    change: AccountChange,
) -> Result<Effect, EffectError> {
    let state = AccountState {
        disabled: matches!(change, AccountChange::Disable),
        changed_at: set.occurred_at,
        reason: set.event.name().to_string(),
    };
    let store = scope.directory.store();
    let mut newest = false;
    for target in found {
        if let Some(id) = target.account_id(scope.provider) {
            newest |= store.set_account_state(&id, &state).await?;
        }
    }
    if !newest {
        return Ok(Effect::Ignored(format!(
            "`{}` is older than what is known of the account",
            set.event.name()
        )));
    }
    // Bearer verdicts hold no session to end: they are reached again.
    scope.directory.accounts_changed().await?;
    match change {
        // Every session, whenever it was made: the account is closed.
        AccountChange::Disable => end(scope, found, None).await,
        AccountChange::Enable => Ok(Effect::Applied { ended: 0, changed: 0 }),
    }
}

/// Rewrites the stored snapshot of each named session with `edit` (which
/// says whether it changed anything), then makes every replica derive
/// them again.
async fn rewrite(
    scope: &Scope<'_>,
    found: &[Target],
    edit: impl Fn(&mut Posture, &mut serde_json::Value) -> bool,
) -> Result<Effect, EffectError> {
    let store = scope.directory.store();
    let mut changed: Vec<SessionKey> = Vec::new();
    for target in found {
        for mut record in store.list_sessions(&target.sessions).await? {
            if changed.contains(&record.key) {
                continue;
            }
            let Ok(mut snapshot) = serde_json::from_str::<serde_json::Value>(&record.claims) else {
                continue;
            };
            let mut posture = Posture::of_snapshot(&record.claims);
            if !edit(&mut posture, &mut snapshot) {
                continue;
            }
            posture.written_into(&mut snapshot);
            record.claims = snapshot.to_string();
            if store.update(&record).await? {
                changed.push(record.key);
            }
        }
    }
    scope.directory.sessions_changed(&changed).await?;
    Ok(Effect::Applied {
        ended: 0,
        changed: changed.len(),
    })
}
