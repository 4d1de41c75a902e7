//! Logins and bearer tokens of an account a shared-signals transmitter
//! closed (RISC `account-disabled`, `account-purged`,
//! `credential-compromise`) are refused until a newer `account-enabled`. The state is in the store, so
//! every replica refuses alike, and it names the provider: the same email
//! through another IdP is another person.

use super::{Auth, AuthError};
use crate::identity::Claims;
use crate::login::LoginResult;
use crate::respond::Denial;
use crate::store::signals::{iss_sub_value, AccountId, AccountState, SignalStore};
use crate::store::StoreError;

impl Auth {
    /// The state of the account `provider` knows as `subject` (and the
    /// claims' email), when a transmitter disabled it.
    pub(super) async fn disabled_by_signal(
        &self,
        provider: &str,
        issuer: &str,
        subject: &str,
        claims: &Claims,
    ) -> Result<Option<AccountState>, StoreError> {
        let iss_sub = iss_sub_value(issuer, subject);
        let mut accounts = vec![
            AccountId {
                provider,
                kind: "iss_sub",
                value: &iss_sub,
            },
            AccountId {
                provider,
                kind: "sub",
                value: subject,
            },
        ];
        if let Some(email) = claims.get("email").and_then(|v| v.as_str()) {
            accounts.push(AccountId {
                provider,
                kind: "email",
                value: email,
            });
        }
        self.sessions.store().disabled_account(&accounts).await
    }

    /// Refuses `login` when a transmitter disabled its account.
    pub(super) async fn signals_admit(&self, login: &LoginResult) -> Result<(), AuthError> {
        match self
            .disabled_by_signal(&login.provider, &login.issuer, &login.subject, &login.merged)
            .await?
        {
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
