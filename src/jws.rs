//! Compact JWS signature checks against a JWKS, for every signed token an
//! outside party hands doorward that openidconnect does not check itself:
//! back-channel logout and bearer tokens (`oidc::jwt`) and Security Event
//! Tokens (`signals`). A floor below both, so neither imports the other.
//!
//! Only asymmetric algorithms the caller allows are accepted: HMAC (whose
//! key would be a secret we share, i.e. anyone holding the client secret
//! could sign) and `none` are refused whatever the caller passes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeySet};
use serde::Deserialize;

use crate::identity::Claims;

/// Why a signature was not accepted. The messages are part of doorward's
/// logs and e2e expectations (through `oidc::jwt::JwtError`): keep them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signature algorithm `{0}` is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("no key in the provider's JWKS matches the token's key id")]
    NoMatchingKey,
    #[error("the signature does not verify")]
    BadSignature,
}

/// The JOSE header members doorward reads.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// A token whose signature has been verified; its claims still need the
/// checks of its kind.
#[derive(Debug)]
pub struct Verified {
    /// The header's `typ`, as sent (callers compare it case-insensitively).
    pub typ: Option<String>,
    /// The header's `kid`: callers refetch the JWKS once when no key matched.
    pub kid: Option<String>,
    pub claims: Claims,
}

/// One base64url (unpadded) segment holding JSON.
pub fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, JwsError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwsError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwsError::Malformed)
}

/// Checks the signature with a key of `jwks`, using only `allowed`
/// algorithms (HMAC is never accepted here: these tokens are signed by the
/// issuer's private key).
pub fn verify_signature(
    token: &str,
    jwks: &JsonWebKeySet<CoreJsonWebKey>,
    allowed: &[CoreJwsSigningAlgorithm],
) -> Result<Verified, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let head: Header = decode_json(header)?;
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(serde_json::Value::String(head.alg.clone()))
        .map_err(|_| JwsError::AlgorithmNotAllowed(head.alg.clone()))?;
    let symmetric = matches!(
        alg,
        CoreJwsSigningAlgorithm::HmacSha256 | CoreJwsSigningAlgorithm::HmacSha384 | CoreJwsSigningAlgorithm::HmacSha512
    );
    if symmetric || !allowed.contains(&alg) {
        return Err(JwsError::AlgorithmNotAllowed(head.alg));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwsError::Malformed)?;
    let message = &token.as_bytes()[..header.len() + 1 + payload.len()];
    let candidates: Vec<&CoreJsonWebKey> = jwks
        .keys()
        .iter()
        .filter(|key| match (&head.kid, key.key_id()) {
            (Some(kid), Some(key_id)) => kid == key_id.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(JwsError::NoMatchingKey);
    }
    // ring first (a constant-time, assembly-backed check that takes a few
    // microseconds); openidconnect's own check decides whatever ring did
    // not accept, so what passes is never more than before.
    if !candidates.iter().any(|key| {
        verified_by_ring(key, &alg, &head.alg, message, &signature)
            || key.verify_signature(&alg, message, &signature).is_ok()
    }) {
        return Err(JwsError::BadSignature);
    }
    Ok(Verified {
        typ: head.typ,
        kid: head.kid,
        claims: decode_json(payload)?,
    })
}

/// Whether ring verifies `signature` over `message` with `key` for `alg`.
/// Only RSA (PKCS#1 v1.5 and PSS, 2048 bits and more) and ECDSA P-256 /
/// P-384 keys fit for signing (`use` absent or `sig`, `alg` absent or the
/// token's) are tried; anything else is left to openidconnect. The
/// transmitter's and the IdP's RSA keys cost about 300 µs each in the pure-Rust
/// big-integer code openidconnect uses, which a shared-signals receiver
/// pays for every SET.
fn verified_by_ring(
    key: &CoreJsonWebKey,
    alg: &CoreJwsSigningAlgorithm,
    alg_name: &str,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use ring::signature as rs;
    let Ok(jwk) = serde_json::to_value(key) else {
        return false;
    };
    let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let bytes = |name: &str| text(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    if text("use").is_some_and(|u| u != "sig") || text("alg").is_some_and(|a| a != alg_name) {
        return false;
    }
    let rsa: Option<&'static rs::RsaParameters> = match alg {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => Some(&rs::RSA_PKCS1_2048_8192_SHA256),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => Some(&rs::RSA_PKCS1_2048_8192_SHA384),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => Some(&rs::RSA_PKCS1_2048_8192_SHA512),
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => Some(&rs::RSA_PSS_2048_8192_SHA256),
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => Some(&rs::RSA_PSS_2048_8192_SHA384),
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => Some(&rs::RSA_PSS_2048_8192_SHA512),
        _ => None,
    };
    if let Some(params) = rsa {
        let (Some("RSA"), Some(n), Some(e)) = (text("kty"), bytes("n"), bytes("e")) else {
            return false;
        };
        return rs::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(params, message, signature)
            .is_ok();
    }
    let (ecdsa, curve): (&'static rs::EcdsaVerificationAlgorithm, &str) = match alg {
        CoreJwsSigningAlgorithm::EcdsaP256Sha256 => (&rs::ECDSA_P256_SHA256_FIXED, "P-256"),
        CoreJwsSigningAlgorithm::EcdsaP384Sha384 => (&rs::ECDSA_P384_SHA384_FIXED, "P-384"),
        _ => return false,
    };
    let (Some("EC"), Some(crv), Some(x), Some(y)) = (text("kty"), text("crv"), bytes("x"), bytes("y")) else {
        return false;
    };
    if crv != curve {
        return false;
    }
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    rs::UnparsedPublicKey::new(ecdsa, &point)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::assertion::keys::SigningKey;

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn signatures_need_an_allowed_asymmetric_algorithm() {
        let jwks = JsonWebKeySet::<CoreJsonWebKey>::new(vec![]);
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{}"#);
        let token = format!("{head}.{body}.c2ln");
        let all = [
            CoreJwsSigningAlgorithm::HmacSha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ];
        assert_eq!(
            verify_signature(&token, &jwks, &all).err(),
            Some(JwsError::AlgorithmNotAllowed("HS256".into()))
        );
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let token = format!("{head}.{body}.");
        assert!(matches!(
            verify_signature(&token, &jwks, &all),
            Err(JwsError::AlgorithmNotAllowed(_))
        ));
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let token = format!("{head}.{body}.c2ln");
        assert_eq!(
            verify_signature(&token, &jwks, &all).err(),
            Some(JwsError::NoMatchingKey)
        );
        assert_eq!(verify_signature("a.b", &jwks, &all).err(), Some(JwsError::Malformed));
    }

    #[test]
    fn a_signed_token_verifies_and_exposes_its_header() {
        let key = SigningKey::generate();
        let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk()).expect("jwk");
        let jwks = JsonWebKeySet::new(vec![jwk]);
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "EdDSA", "kid": key.kid(), "typ": "secevent+jwt"})),
            b64(&json!({"iss": "x"}))
        );
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())));
        let verified = verify_signature(&token, &jwks, &[CoreJwsSigningAlgorithm::EdDsa]).expect("verifies");
        assert_eq!(verified.kid.as_deref(), Some(key.kid()));
        assert_eq!(verified.typ.as_deref(), Some("secevent+jwt"));
        assert_eq!(verified.claims.get("iss"), Some(&json!("x")));
        // One byte of the payload changed: the same key no longer verifies.
        let tampered = token.replacen(&b64(&json!({"iss": "x"})), &b64(&json!({"iss": "y"})), 1);
        assert_eq!(
            verify_signature(&tampered, &jwks, &[CoreJwsSigningAlgorithm::EdDsa]).err(),
            Some(JwsError::BadSignature)
        );
        // Allowed by the key but not by the caller.
        assert_eq!(
            verify_signature(&token, &jwks, &[CoreJwsSigningAlgorithm::EcdsaP256Sha256]).err(),
            Some(JwsError::AlgorithmNotAllowed("EdDSA".into()))
        );
    }
}
