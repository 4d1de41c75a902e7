//! Signed identity assertions: a short-lived JWT (EdDSA by default, ES256
//! as an option) in `X-Doorward-Assertion`, verifiable by any JWT library
//! against `/_doorward/jwks.json`. A request that bypassed doorward cannot
//! carry one, so the upstream can trust identity even on a flat network.
//!
//! Signing is cached per identity view and route until a quarter of the
//! lifetime is left, so it is not paid on every request.

pub mod client_certificate;
pub mod client_key;
pub mod http_signature;
pub mod keys;

use std::sync::RwLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::HeaderValue;
use serde_json::json;

use crate::identity::Identity;
use keys::SigningKey;

pub struct AssertionSigner {
    /// The first signs; all are published.
    keys: Vec<SigningKey>,
    issuer: String,
    ttl: i64,
    /// The header the assertion travels in.
    header: http::HeaderName,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionSigner({} keys, issuer {})", self.keys.len(), self.issuer)
    }
}

impl AssertionSigner {
    pub fn new(keys: Vec<SigningKey>, issuer: String, ttl: Duration, header: &str) -> Option<Self> {
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            keys,
            issuer,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(60).max(1),
            header: http::HeaderName::from_bytes(header.as_bytes()).ok()?,
        })
    }

    pub fn header_name(&self) -> &http::HeaderName {
        &self.header
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The public keys, as served at /_doorward/jwks.json.
    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": self.keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
    }

    /// A compact JWS for this identity and audience, valid from `now`.
    pub fn sign(&self, identity: &Identity, audience: &str, now: i64) -> (String, i64) {
        let key = &self.keys[0];
        let exp = now + self.ttl;
        let header = json!({"alg": key.alg(), "typ": "JWT", "kid": key.kid()});
        let mut claims = json!({
            "iss": self.issuer,
            "aud": audience,
            "sub": identity.subject,
            "user": identity.user,
            "groups": identity.groups,
            "roles": identity.roles,
            "orgs": identity.orgs,
            // Who vouched: the same email from two IdPs is two people.
            "idp": identity.idp,
            "idp_iss": identity.idp_issuer,
            "iat": now,
            "nbf": now,
            "exp": exp,
        });
        if let Some(email) = &identity.email {
            claims["email"] = json!(email);
        }
        if let Some(username) = &identity.preferred_username {
            claims["preferred_username"] = json!(username);
        }
        if let Some(role) = &identity.role {
            claims["role"] = json!(role);
        }
        // How the login was made, for apps that judge assurance themselves.
        let authentication = &identity.authentication;
        if let Some(acr) = &authentication.acr {
            claims["acr"] = json!(acr);
        }
        if !authentication.amr.is_empty() {
            claims["amr"] = json!(authentication.amr);
        }
        if let Some(auth_time) = authentication.auth_time {
            claims["auth_time"] = json!(auth_time);
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
        (format!("{signing_input}.{signature}"), exp)
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }
}

/// Signed assertions of one identity, one slot per route.
#[derive(Debug, Default)]
pub struct AssertionCache {
    slots: RwLock<Vec<Option<(HeaderValue, i64)>>>,
}

impl AssertionCache {
    /// The cached assertion for `route`, or a freshly signed one.
    pub fn get(
        &self,
        route: usize,
        signer: &AssertionSigner,
        identity: &Identity,
        audience: &str,
        now: i64,
    ) -> Option<HeaderValue> {
        let fresh_enough = |exp: i64| exp - now > signer.ttl() / 4;
        if let Ok(slots) = self.slots.read() {
            if let Some(Some((value, exp))) = slots.get(route) {
                if fresh_enough(*exp) {
                    return Some(value.clone());
                }
            }
        }
        let (token, exp) = signer.sign(identity, audience, now);
        let value = HeaderValue::from_str(&token).ok()?;
        if let Ok(mut slots) = self.slots.write() {
            if slots.len() <= route {
                slots.resize(route + 1, None);
            }
            slots[route] = Some((value.clone(), exp));
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            subject: "alice".into(),
            user: "alice@example.com".into(),
            email: Some("alice@example.com".into()),
            groups: vec!["engineers".into()],
            ..Identity::default()
        }
    }

    #[test]
    fn assertions_verify_with_the_published_key_and_are_cached() {
        let signer = AssertionSigner::new(
            vec![SigningKey::generate()],
            "https://dw.test".into(),
            Duration::from_secs(60),
            "x-doorward-assertion",
        )
        .expect("signer");
        let (token, exp) = signer.sign(&identity(), "grafana", 1_000);
        assert_eq!(exp, 1_060);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let jwk = &signer.jwks()["keys"][0];
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().expect("x")).expect("b64");
        let public = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().expect("32 bytes")).expect("key");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        let signature = ed25519_dalek::Signature::from_slice(&signature).expect("sig");
        public
            .verify_strict(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("verifies");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "grafana");
        assert_eq!(claims["groups"], json!(["engineers"]));

        let cache = AssertionCache::default();
        let a = cache.get(2, &signer, &identity(), "grafana", 1_000).expect("signed");
        let b = cache.get(2, &signer, &identity(), "grafana", 1_030).expect("cached");
        assert_eq!(a, b, "reused while fresh");
        let c = cache.get(2, &signer, &identity(), "grafana", 1_050).expect("renewed");
        assert_ne!(a, c, "renewed near expiry");
    }
}
