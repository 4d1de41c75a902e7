//! Logins of an account a shared-signals transmitter closed (RISC
//! `account-disabled`, `account-purged`, `credential-compromise`) are
//! refused until a newer `account-enabled`. The state is in the store, so
//! every replica refuses alike, and it names the provider: the same email
//! through another IdP is another person.

use super::{Auth, AuthError};
use crate::login::LoginResult;
use crate::respond::Denial;
use crate::store::signals::{AccountId, SignalStore};

impl Auth {
    /// Refuses `login` when a transmitter disabled its account.
    pub(super) async fn signals_admit(&self, login: &LoginResult) -> Result<(), AuthError> {
        let mut accounts = vec![AccountId {
            provider: &login.provider,
            kind: "sub",
            value: &login.subject,
        }];
        if let Some(email) = login.merged.get("email").and_then(|v| v.as_str()) {
            accounts.push(AccountId {
                provider: &login.provider,
                kind: "email",
                value: email,
            });
        }
        match self.sessions.store().disabled_account(&accounts).await? {
            None => Ok(()),
            Some(state) => Err(AuthError::LoginDenied(Denial {
                account: login.subject.clone(),
                reason: format!(
                    "user `{}` from `{}`: the identity provider reported `{}`; logins wait for account-enabled",
                    login.subject, login.provider, state.reason
                ),
            })),
        }
    }
}
