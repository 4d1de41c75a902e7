//! Who may provision: the IdP's bearer token and/or HTTP Basic
//! credentials from `[scim]`. Whoever holds them can create users, give
//! them roles and end anyone's sessions, so:
//! - secrets are kept as SHA-256 digests and compared in constant time
//!   (`subtle`), digest against digest, so neither the secret's bytes nor
//!   its length leak through timing;
//! - failed attempts are counted per client address; after
//!   [`MAX_FAILURES`] in [`WINDOW_SECS`] the address gets 429 with
//!   `Retry-After` until the window ends, without its credentials being
//!   checked at all (so guessing cannot go on at any speed);
//! - the client address is the caller's, never a shared hop's: behind
//!   `[server] trusted_proxies` the caller passes the address the
//!   forwarding chain names (as for X-Forwarded-For upstream), so clients
//!   that fail behind the same ingress lock out only themselves, never the
//!   IdP with the valid credential;
//! - failures are logged with the client and what was wrong, never with
//!   what was presented.

use std::net::IpAddr;

use base64::Engine;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::ScimError;
use crate::clock::Clock;
use crate::respond::Reply;
use crate::secret::SecretString;

/// Failed attempts an address may make per window.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, in seconds.
pub const WINDOW_SECS: i64 = 60;

type Digest32 = [u8; 32];

fn digest(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// The configured credentials and the failure counter.
pub struct Credentials {
    bearer: Option<Digest32>,
    basic: Option<(Digest32, Digest32)>,
    failures: moka::sync::Cache<IpAddr, (i64, u32)>,
    clock: Clock,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("bearer", &self.bearer.is_some())
            .field("basic", &self.basic.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a request's credentials were not accepted (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Missing,
    WrongBearer,
    WrongBasic,
    UnsupportedScheme,
}

impl Credentials {
    pub fn new(bearer: Option<&SecretString>, basic: Option<(&str, &SecretString)>, clock: Clock) -> Self {
        Self {
            bearer: bearer.map(|t| digest(t.expose().as_bytes())),
            basic: basic.map(|(user, password)| (digest(user.as_bytes()), digest(password.expose().as_bytes()))),
            failures: moka::sync::Cache::builder()
                // Bounded: a flood of addresses cannot grow it without limit.
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(WINDOW_SECS.unsigned_abs()))
                .build(),
            clock,
        }
    }

    /// Lets the request through, or says why not (401 or 429). `peer` is
    /// the client's address (see the module doc: not a trusted proxy's).
    /// Returns which credential was presented (`bearer_token` or
    /// `basic`), for the audit trail.
    pub fn check(&self, headers: &HeaderMap, peer: IpAddr) -> Result<&'static str, ScimError> {
        let now = self.clock.now();
        if let Some((start, count)) = self.failures.get(&peer) {
            if count >= MAX_FAILURES && now - start < WINDOW_SECS {
                let retry_after = u32::try_from(start + WINDOW_SECS - now).unwrap_or(1).max(1);
                return Err(ScimError::RateLimited { retry_after });
            }
        }
        match self.verify(headers) {
            Ok(credential) => Ok(credential),
            Err(reason) => {
                let entry = self
                    .failures
                    .entry(peer)
                    .and_upsert_with(|old| match old.map(|e| e.into_value()) {
                        Some((start, count)) if now - start < WINDOW_SECS => (start, count.saturating_add(1)),
                        _ => (now, 1),
                    });
                tracing::warn!(peer = %peer, ?reason, failures = entry.value().1, "scim: authentication failed");
                Err(ScimError::Unauthorized)
            }
        }
    }

    fn verify(&self, headers: &HeaderMap) -> Result<&'static str, Refused> {
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Err(Refused::Missing);
        };
        let (scheme, presented) = value.trim().split_once(' ').ok_or(Refused::UnsupportedScheme)?;
        let presented = presented.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let expected = self.bearer.as_ref().ok_or(Refused::UnsupportedScheme)?;
            let ok: bool = digest(presented.as_bytes()).ct_eq(expected).into();
            return if ok {
                Ok("bearer_token")
            } else {
                Err(Refused::WrongBearer)
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, password) = self.basic.as_ref().ok_or(Refused::UnsupportedScheme)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(presented)
                .map_err(|_| Refused::WrongBasic)?;
            let split = decoded.iter().position(|&b| b == b':').ok_or(Refused::WrongBasic)?;
            let (given_user, given_password) = (&decoded[..split], &decoded[split + 1..]);
            // Both halves are compared whatever the first gives.
            let ok = digest(given_user).ct_eq(user) & digest(given_password).ct_eq(password);
            return if bool::from(ok) {
                Ok("basic")
            } else {
                Err(Refused::WrongBasic)
            };
        }
        Err(Refused::UnsupportedScheme)
    }

    /// The `WWW-Authenticate` challenges for a 401.
    pub fn challenge(&self, reply: &mut Reply) {
        if self.bearer.is_some() {
            reply.headers_mut().append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"doorward-scim\""),
            );
        }
        if self.basic.is_some() {
            reply.headers_mut().append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"doorward-scim\", charset=\"UTF-8\""),
            );
        }
    }

    /// The authentication schemes, for `/ServiceProviderConfig`.
    pub fn schemes(&self) -> Vec<serde_json::Value> {
        let mut schemes = Vec::new();
        if self.bearer.is_some() {
            schemes.push(serde_json::json!({
                "type": "oauthbearertoken", "name": "Bearer token",
                "description": "The token configured in [scim] bearer_token, as `Authorization: Bearer <token>`.",
                "primary": true,
            }));
        }
        if self.basic.is_some() {
            schemes.push(serde_json::json!({
                "type": "httpbasic", "name": "HTTP Basic",
                "description": "[scim] basic_user and basic_password.",
                "primary": self.bearer.is_none(),
            }));
        }
        schemes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(clock: &Clock) -> Credentials {
        let token = SecretString::new("t0ken-t0ken-t0ken-t0ken-t0ken-t0ken".into());
        let password = SecretString::new("pa55word".into());
        Credentials::new(Some(&token), Some(("okta", &password)), clock.clone())
    }

    fn with(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(authorization).expect("header"));
        h
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        with(&format!("Basic {encoded}"))
    }

    #[test]
    fn the_configured_bearer_token_and_basic_credentials_pass() {
        let clock = Clock::manual(1_000);
        let c = creds(&clock);
        let peer: IpAddr = [127, 0, 0, 1].into();
        assert!(c
            .check(&with("Bearer t0ken-t0ken-t0ken-t0ken-t0ken-t0ken"), peer)
            .is_ok());
        assert!(c
            .check(&with("bearer  t0ken-t0ken-t0ken-t0ken-t0ken-t0ken "), peer)
            .is_ok());
        assert!(c.check(&basic("okta", "pa55word"), peer).is_ok());
    }

    #[test]
    fn each_wrong_credential_is_refused_for_its_own_reason() {
        let c = creds(&Clock::manual(1_000));
        assert_eq!(c.verify(&HeaderMap::new()), Err(Refused::Missing));
        assert_eq!(c.verify(&with("Bearer t0ken")), Err(Refused::WrongBearer));
        assert_eq!(
            c.verify(&with("Bearer t0ken-t0ken-t0ken-t0ken-t0ken-t0keN")),
            Err(Refused::WrongBearer)
        );
        assert_eq!(c.verify(&basic("okta", "pa55wor")), Err(Refused::WrongBasic));
        assert_eq!(c.verify(&basic("okt", "pa55word")), Err(Refused::WrongBasic));
        assert_eq!(c.verify(&with("Basic !!!")), Err(Refused::WrongBasic));
        assert_eq!(c.verify(&with("Digest x")), Err(Refused::UnsupportedScheme));
        let bearer_only = Credentials::new(Some(&SecretString::new("x".repeat(32))), None, Clock::manual(0));
        assert_eq!(
            bearer_only.verify(&basic("okta", "pa55word")),
            Err(Refused::UnsupportedScheme)
        );
    }

    #[test]
    fn repeated_failures_lock_the_address_out_until_the_window_ends() {
        let clock = Clock::manual(1_000);
        let c = creds(&clock);
        let attacker: IpAddr = [10, 0, 0, 9].into();
        let idp: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                c.check(&with("Bearer guess"), attacker),
                Err(ScimError::Unauthorized)
            ));
        }
        let good = with("Bearer t0ken-t0ken-t0ken-t0ken-t0ken-t0ken");
        match c.check(&good, attacker) {
            Err(ScimError::RateLimited { retry_after }) => assert_eq!(retry_after, 60),
            other => panic!("{other:?}"),
        }
        assert!(c.check(&good, idp).is_ok(), "other addresses are not affected");
        clock.advance(WINDOW_SECS);
        assert!(c.check(&good, attacker).is_ok(), "the window ended");
    }

    #[test]
    fn many_clients_failing_never_refuse_the_valid_credential_of_another() {
        let clock = Clock::manual(1_000);
        let c = creds(&clock);
        let good = with("Bearer t0ken-t0ken-t0ken-t0ken-t0ken-t0ken");
        let idp: IpAddr = [198, 51, 100, 1].into();
        for client in 0..50u8 {
            let attacker: IpAddr = [203, 0, 113, client].into();
            for _ in 0..=MAX_FAILURES {
                assert!(c.check(&with("Bearer guess"), attacker).is_err());
            }
            assert!(matches!(
                c.check(&with("Bearer guess"), attacker),
                Err(ScimError::RateLimited { .. })
            ));
            assert!(c.check(&good, idp).is_ok(), "after client {client}'s failures");
        }
    }
}
