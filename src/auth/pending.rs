//! The state of a login in progress, kept in a short-lived sealed cookie
//! so any replica can finish a login another started. Its name carries a
//! prefix of `state`, so logins in several tabs do not overwrite each other.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::session::keys::KeyRing;
use crate::session::now;

#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub created_at: i64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Why a callback's state did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the callback has no usable state parameter")]
    MissingState,
    #[error("no login cookie matches the state (expired, another browser, or forged)")]
    NoCookie,
    #[error("the login cookie does not open (tampered or another deployment's)")]
    Unsealed,
    #[error("the state does not match the login that was started")]
    Mismatch,
    #[error("the login took too long")]
    Expired,
}

/// The cookie name for a login whose state is `state`.
pub fn cookie_name(base: &str, state: &str) -> Option<String> {
    let prefix: String = state.chars().take(16).collect();
    let ok = prefix.len() >= 8
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("{base}-login-{prefix}"))
}

impl PendingLogin {
    pub fn seal(&self, keys: &KeyRing, name: &str) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        keys.seal_cookie(name, &json)
    }

    /// Opens the cookie and checks that it belongs to this callback.
    pub fn open(keys: &KeyRing, name: &str, sealed: &str, state: &str, max_age: i64) -> Result<Self, StateError> {
        let json = keys.open_cookie(name, sealed).ok_or(StateError::Unsealed)?;
        let pending: Self = serde_json::from_str(&json).map_err(|_| StateError::Unsealed)?;
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(StateError::Mismatch);
        }
        if now().saturating_sub(pending.created_at) > max_age {
            return Err(StateError::Expired);
        }
        Ok(pending)
    }
}
