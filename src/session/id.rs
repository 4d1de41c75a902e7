//! Session ids: 256 random bits, base64url in the (sealed) cookie. The store
//! only ever sees their SHA-256.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::store::SessionKey;

/// An opaque session id. Never printed.
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    pub fn new_random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only the shape doorward makes (43 base64url characters).
    pub fn parse(text: &str) -> Option<Self> {
        Self::well_formed(text).then(|| Self(text.to_string()))
    }

    /// The store key of a session id in its cookie form, without keeping
    /// the id (the per-request path needs only the key).
    pub fn key_of(text: &str) -> Option<SessionKey> {
        Self::well_formed(text).then(|| SessionKey(Sha256::digest(text.as_bytes()).into()))
    }

    fn well_formed(text: &str) -> bool {
        text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> SessionKey {
        SessionKey(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_parseable_and_unprintable() {
        let a = SessionId::new_random();
        let b = SessionId::new_random();
        assert_ne!(a.as_str(), b.as_str());
        assert!(SessionId::parse(a.as_str()).is_some());
        assert!(SessionId::parse("short").is_none());
        assert!(SessionId::parse(&"!".repeat(43)).is_none());
        assert_eq!(format!("{a:?}"), "SessionId([redacted])");
        assert_eq!(a.key(), SessionId::parse(a.as_str()).map(|s| s.key()).expect("parses"));
        assert_eq!(SessionId::key_of(a.as_str()), Some(a.key()));
        assert_eq!(SessionId::key_of("short"), None);
    }
}
