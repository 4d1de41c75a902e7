//! The state of a login in progress, kept in a short-lived sealed cookie
//! so any replica can finish a login another started. Its name carries a
//! prefix of the login's key (OIDC `state`, SAML `RelayState`), so logins
//! in several tabs do not overwrite each other; how many may pile up is
//! bounded by the login endpoint.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::AssuranceAsk;
use crate::keyring::KeyRing;

/// What each protocol must remember between sending the browser away and
/// its coming back.
#[derive(Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum ProtocolState {
    Oidc {
        nonce: String,
        pkce_verifier: String,
    },
    /// The AuthnRequest ID, for `InResponseTo`.
    Saml {
        request_id: String,
    },
}

#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    /// OIDC `state` / SAML `RelayState`: random, and what the cookie is
    /// found by when the browser comes back.
    pub key: String,
    pub state: ProtocolState,
    pub return_to: String,
    pub created_at: i64,
    /// What this login must prove (a route's `acr`, `max_age`): checked
    /// on the IdP's answer before anything is stored.
    #[serde(default, skip_serializing_if = "AssuranceAsk::is_empty")]
    pub ask: AssuranceAsk,
    /// A step-up raises this session (its store key) instead of starting
    /// another, when the same user comes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raises: Option<[u8; 32]>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Why a returning login did not check out.
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

/// The cookie name prefix every pending login shares.
pub fn cookie_prefix(base: &str) -> String {
    format!("{base}-login-")
}

/// The cookie name for a login whose key is `key`.
pub fn cookie_name(base: &str, key: &str) -> Option<String> {
    let prefix: String = key.chars().take(16).collect();
    let ok = prefix.len() >= 8
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("{}{prefix}", cookie_prefix(base)))
}

/// A fresh random key (256 bits, base64url) for a login that has no
/// protocol-given one (SAML's RelayState).
pub fn random_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl PendingLogin {
    pub fn seal(&self, keys: &KeyRing, name: &str) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        keys.seal_cookie(name, &json)
    }

    /// Just the creation time, for choosing which pending logins to drop.
    pub fn created_at_of(keys: &KeyRing, name: &str, sealed: &str) -> Option<i64> {
        let json = keys.open_cookie(name, sealed)?;
        serde_json::from_str::<Self>(&json).ok().map(|p| p.created_at)
    }

    /// Opens the cookie and checks that it belongs to this returning login
    /// (`key`) and is not older than `max_age` at `now`.
    pub fn open(
        keys: &KeyRing,
        name: &str,
        sealed: &str,
        key: &str,
        now: i64,
        max_age: i64,
    ) -> Result<Self, StateError> {
        let json = keys.open_cookie(name, sealed).ok_or(StateError::Unsealed)?;
        let pending: Self = serde_json::from_str(&json).map_err(|_| StateError::Unsealed)?;
        if !bool::from(pending.key.as_bytes().ct_eq(key.as_bytes())) {
            return Err(StateError::Mismatch);
        }
        if now.saturating_sub(pending.created_at) > max_age {
            return Err(StateError::Expired);
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;

    fn ring() -> KeyRing {
        KeyRing::new(&[SecretString::new("0123456789abcdef0123456789abcdef-pending".into())]).expect("ring")
    }

    fn pending(key: &str, created_at: i64) -> PendingLogin {
        PendingLogin {
            provider: "p".into(),
            key: key.into(),
            state: ProtocolState::Saml {
                request_id: "_abc".into(),
            },
            return_to: "/".into(),
            created_at,
            ask: AssuranceAsk::default(),
            raises: None,
        }
    }

    #[test]
    fn each_state_check_refuses_with_its_error() {
        let keys = ring();
        let key = random_key();
        let name = cookie_name("dw", &key).expect("name");
        let sealed = pending(&key, 1_000).seal(&keys, &name);
        assert!(PendingLogin::open(&keys, &name, &sealed, &key, 1_100, 600).is_ok());
        assert_eq!(
            PendingLogin::open(&keys, &name, &sealed, "another-key-entirely", 1_100, 600).err(),
            Some(StateError::Mismatch)
        );
        assert_eq!(
            PendingLogin::open(&keys, &name, &sealed, &key, 1_601, 600).err(),
            Some(StateError::Expired)
        );
        assert_eq!(
            PendingLogin::open(&keys, "dw-login-other", &sealed, &key, 1_100, 600).err(),
            Some(StateError::Unsealed),
            "a sealed value moved to another cookie name does not open"
        );
        assert_eq!(cookie_name("dw", "short"), None);
        assert_eq!(cookie_name("dw", "has;semicolons!"), None);
        assert_eq!(PendingLogin::created_at_of(&keys, &name, &sealed), Some(1_000));
    }
}
