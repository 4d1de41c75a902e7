//! The key ring: cookie sealing keys (first seals, all open) and the keys
//! that encrypt tokens at rest, derived from the configured session
//! secrets. Below both `login` (pending-login cookies) and `session`
//! (session cookies, tokens at rest), so neither imports the other for it.

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SecretString;

use crate::secret::MIN_SECRET_LEN;

/// The cookie crate's private-cookie layout: nonce, then ciphertext and tag.
const COOKIE_NONCE_LEN: usize = 12;
const COOKIE_TAG_LEN: usize = 16;
/// Sealed values longer than this (decoded) do not open: doorward's own
/// cookies are far smaller (a pending login, the largest, is a few hundred
/// bytes), and the cookie reader already refuses values over 4 KiB.
const MAX_SEALED_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "session key {index} is {len} bytes; at least {MIN_SECRET_LEN} are needed (make one with `doorward keygen`)"
    )]
    TooShort { index: usize, len: usize },
    #[error("no session keys are configured")]
    Empty,
}

/// One configured secret, expanded for each use.
struct KeySet {
    cookie: cookie::Key,
    /// The cookie crate's private-cookie cipher, keyed once: the crate
    /// re-expands the AES key on every open, per request (see
    /// [`KeyRing::open_cookie`]).
    cookie_cipher: Aes256Gcm,
    tokens: Aes256Gcm,
    mac: [u8; 32],
}

pub struct KeyRing {
    sets: Vec<KeySet>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys, [redacted])", self.sets.len())
    }
}

fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    // HMAC as a PRF: independent keys per purpose from one secret.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

impl KeyRing {
    pub fn new(secrets: &[SecretString]) -> Result<Self, KeyError> {
        if secrets.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut sets = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let bytes = secret.expose().as_bytes();
            if bytes.len() < MIN_SECRET_LEN {
                return Err(KeyError::TooShort {
                    index,
                    len: bytes.len(),
                });
            }
            let cookie = cookie::Key::derive_from(&derive(bytes, b"doorward cookie key v1"));
            let cookie_cipher = Aes256Gcm::new_from_slice(cookie.encryption())
                .unwrap_or_else(|_| unreachable!("the cookie crate's encryption key is 32 bytes"));
            let tokens = Aes256Gcm::new(&derive(bytes, b"doorward token key v1").into());
            let mac = derive(bytes, b"doorward form mac v1");
            sets.push(KeySet {
                cookie,
                cookie_cipher,
                tokens,
                mac,
            });
        }
        Ok(Self { sets })
    }

    /// Seals `value` as cookie `name` with the first key. The name is bound
    /// into the seal, so a value moved to another cookie does not open.
    pub fn seal_cookie(&self, name: &str, value: &str) -> String {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.sets[0].cookie)
            .add(cookie::Cookie::new(name.to_string(), value.to_string()));
        jar.get(name).map(|c| c.value().to_string()).unwrap_or_default()
    }

    /// Opens a sealed cookie value with any key; None if it does not open.
    ///
    /// Sealing is the cookie crate's (private cookies); opening reads the
    /// same format, base64(nonce ‖ AES-256-GCM(value, aad = name)), with
    /// the cipher keyed once and the bytes on the stack. It runs on every
    /// logged-in request, and the crate's own path (a fresh key schedule
    /// and five allocations) was a measurable part of its cost. A test
    /// below holds the two to the same answers.
    pub fn open_cookie(&self, name: &str, sealed: &str) -> Option<String> {
        let mut buf = [0u8; MAX_SEALED_BYTES];
        let len = STANDARD.decode_slice(sealed, &mut buf).ok()?;
        if len < COOKIE_NONCE_LEN + COOKIE_TAG_LEN {
            return None;
        }
        let (nonce, rest) = buf[..len].split_at_mut(COOKIE_NONCE_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - COOKIE_TAG_LEN);
        let mut plain = [0u8; MAX_SEALED_BYTES];
        let plain = &mut plain[..body.len()];
        let opened = self.sets.iter().any(|set| {
            plain.copy_from_slice(body);
            set.cookie_cipher
                .decrypt_in_place_detached(
                    Nonce::from_slice(nonce),
                    name.as_bytes(),
                    plain,
                    aes_gcm::Tag::from_slice(tag),
                )
                .is_ok()
        });
        if !opened {
            return None;
        }
        std::str::from_utf8(plain).ok().map(str::to_string)
    }

    /// A keyed MAC (for CSRF tokens bound to a session).
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        derive(&self.sets[0].mac, data)
    }

    /// Encrypts bytes at rest: key index, 96-bit nonce, AES-256-GCM output.
    pub fn encrypt(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let payload = aes_gcm::aead::Payload {
            msg: plain,
            aad: context,
        };
        let sealed = self.sets[0]
            .tokens
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`KeyRing::encrypt`] made, with any key of the ring.
    pub fn decrypt(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != 0 || rest.len() < 12 {
            return None;
        }
        let (nonce, body) = rest.split_at(12);
        self.sets.iter().find_map(|set| {
            let payload = aes_gcm::aead::Payload {
                msg: body,
                aad: context,
            };
            set.tokens.decrypt(Nonce::from_slice(nonce), payload).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(secrets: &[&str]) -> KeyRing {
        let secrets: Vec<_> = secrets.iter().map(|s| SecretString::new(s.to_string())).collect();
        KeyRing::new(&secrets).expect("ring")
    }

    const A: &str = "0123456789abcdef0123456789abcdef-a";
    const B: &str = "0123456789abcdef0123456789abcdef-b";

    #[test]
    fn cookies_open_with_any_key_of_the_ring_and_only_under_their_name() {
        let old = ring(&[A]);
        let sealed = old.seal_cookie("doorward", "session-id");
        assert_eq!(old.open_cookie("doorward", &sealed).as_deref(), Some("session-id"));
        let rotated = ring(&[B, A]);
        assert_eq!(rotated.open_cookie("doorward", &sealed).as_deref(), Some("session-id"));
        assert_eq!(rotated.open_cookie("other-name", &sealed), None);
        assert_eq!(
            ring(&[B]).open_cookie("doorward", &sealed),
            None,
            "another deployment's key"
        );
        let mut tampered = sealed.clone().into_bytes();
        tampered[10] ^= 1;
        assert_eq!(old.open_cookie("doorward", &String::from_utf8_lossy(&tampered)), None);
        assert_eq!(
            old.open_cookie("doorward", &sealed[..sealed.len() - 3]),
            None,
            "truncated"
        );
        assert_eq!(old.open_cookie("doorward", ""), None);
    }

    #[test]
    fn opening_agrees_with_the_cookie_crate() {
        let ring = ring(&[A, B]);
        let crate_open = |name: &str, sealed: &str| {
            ring.sets.iter().find_map(|set| {
                cookie::CookieJar::new()
                    .private(&set.cookie)
                    .decrypt(cookie::Cookie::new(name.to_string(), sealed.to_string()))
                    .map(|c| c.value().to_string())
            })
        };
        let long = "x".repeat(2000);
        for value in ["session-id", "", "ü-utf8", long.as_str()] {
            let sealed = ring.seal_cookie("doorward", value);
            for (name, candidate) in [
                ("doorward", sealed.clone()),
                ("other", sealed.clone()),
                ("doorward", sealed[1..].to_string()),
                ("doorward", format!("{sealed}A")),
                ("doorward", sealed.replace('A', "B")),
                ("doorward", "!!!".into()),
            ] {
                assert_eq!(
                    ring.open_cookie(name, &candidate),
                    crate_open(name, &candidate),
                    "{name} {candidate}"
                );
            }
            assert_eq!(ring.open_cookie("doorward", &sealed).as_deref(), Some(value));
        }
        let huge = ring.seal_cookie("doorward", &"y".repeat(5000));
        assert_eq!(ring.open_cookie("doorward", &huge), None, "over the size bound");
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_context() {
        let ring = ring(&[A]);
        let sealed = ring.encrypt(b"refresh-token", b"session-1");
        assert_eq!(
            ring.decrypt(&sealed, b"session-1").as_deref(),
            Some(&b"refresh-token"[..])
        );
        assert_eq!(ring.decrypt(&sealed, b"session-2"), None);
        assert_eq!(ring.decrypt(&sealed[..5], b"session-1"), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = KeyRing::new(&[SecretString::new("short".into())]).expect_err("too short");
        assert!(err.to_string().contains("at least 32"));
    }
}
