//! What shared signals keep beyond sessions: the accounts a transmitter
//! disabled, each with the time of the event that said so, so that events
//! about one account take effect in the order they happened, on every
//! replica, and a late `account-enabled` never undoes a newer
//! `account-disabled`. One statement text serves both backends.

use std::future::Future;

use super::StoreError;

/// How a transmitter named an account: its kind (`iss_sub`, `sub`, `email`) and
/// value, within one provider. Emails are kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountId<'a> {
    pub provider: &'a str,
    pub kind: &'static str,
    pub value: &'a str,
}

impl AccountId<'_> {
    pub(crate) fn stored_value(&self) -> String {
        if self.kind == "email" {
            self.value.to_lowercase()
        } else {
            self.value.to_string()
        }
    }
}

/// The stored value of an `iss_sub` account: issuer and subject, apart
/// by a space (which no issuer URL contains).
pub fn iss_sub_value(issuer: &str, subject: &str) -> String {
    format!("{issuer} {subject}")
}

/// An account's state as the newest event made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub disabled: bool,
    pub changed_at: i64,
    /// The event that set it (e.g. `account-disabled`), for the log.
    pub reason: String,
}

/// What every backend keeps for shared signals.
pub trait SignalStore: Send + Sync {
    /// Records `state` for `account` unless a newer (or, for an enabling,
    /// an equally new) event already did: true if it took effect.
    fn set_account_state(
        &self,
        account: &AccountId<'_>,
        state: &AccountState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes back a one-time id (`remember_once`) whose work failed, so
    /// the sender's retry is not refused as a replay.
    fn forget_once(&self, scope: &str, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The first of `accounts` that is disabled now, with its state.
    fn disabled_account(
        &self,
        accounts: &[AccountId<'_>],
    ) -> impl Future<Output = Result<Option<AccountState>, StoreError>> + Send;
}

/// `impl SignalStore for $store` over its `pool`.
macro_rules! impl_signals {
    ($store:ty) => {
        impl $crate::store::signals::SignalStore for $store {
            async fn set_account_state(
                &self,
                account: &$crate::store::signals::AccountId<'_>,
                state: &$crate::store::signals::AccountState,
            ) -> Result<bool, $crate::store::StoreError> {
                // A tie goes to the disabling event: of two events of the
                // same second, the safe one wins.
                let done = sqlx::query(
                    "INSERT INTO signal_accounts (provider, kind, value, disabled, changed_at, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (provider, kind, value) DO UPDATE SET disabled = excluded.disabled, \
                     changed_at = excluded.changed_at, reason = excluded.reason \
                     WHERE signal_accounts.changed_at < excluded.changed_at \
                     OR (signal_accounts.changed_at = excluded.changed_at AND excluded.disabled)",
                )
                .bind(account.provider)
                .bind(account.kind)
                .bind(account.stored_value())
                .bind(state.disabled)
                .bind(state.changed_at)
                .bind(&state.reason)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn forget_once(&self, scope: &str, id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM seen_once WHERE scope = $1 AND id = $2")
                    .bind(scope)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn disabled_account(
                &self,
                accounts: &[$crate::store::signals::AccountId<'_>],
            ) -> Result<Option<$crate::store::signals::AccountState>, $crate::store::StoreError> {
                use sqlx::Row;
                for account in accounts {
                    let row = sqlx::query(
                        "SELECT changed_at, reason FROM signal_accounts \
                         WHERE provider = $1 AND kind = $2 AND value = $3 AND disabled",
                    )
                    .bind(account.provider)
                    .bind(account.kind)
                    .bind(account.stored_value())
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = row {
                        return Ok(Some($crate::store::signals::AccountState {
                            disabled: true,
                            changed_at: row.try_get("changed_at")?,
                            reason: row.try_get("reason")?,
                        }));
                    }
                }
                Ok(None)
            }
        }
    };
}
pub(crate) use impl_signals;
