//! Security Event Tokens from a transmitter: any bytes as a SET, and any
//! bytes as the payload (then the header) of a SET signed by the trusted
//! key, so the fuzzer reaches the claim, event and subject checks behind
//! the signature. Nothing may panic, every refusal carries an RFC 8935
//! code, and nothing accepted breaks the rules it was validated against.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKeySet;
use serde_json::{json, Value};

use crate::assertion::keys::SigningKey;
use crate::signals::set::{validate, SecurityEvent, SetError, SetRules};

const ISSUER: &str = "https://tx.fuzz.test";
const AUDIENCE: &str = "https://dw.fuzz.test";
const NOW: i64 = 1_000_000;
const CODES: [&str; 4] = ["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience"];

/// Signs `claims` under `header` as a compact JWS (tests and fuzzing).
pub fn mint(header: &Value, claims: &[u8], key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims)
    );
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
}

/// The transmitter's key, made once, and its JWKS.
fn transmitter() -> &'static (SigningKey, JsonWebKeySet<CoreJsonWebKey>) {
    static KEY: OnceLock<(SigningKey, JsonWebKeySet<CoreJsonWebKey>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = SigningKey::generate();
        let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk()).expect("a JWK of our own key");
        (key, JsonWebKeySet::new(vec![jwk]))
    })
}

fn rules() -> SetRules<'static> {
    SetRules {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: &[CoreJwsSigningAlgorithm::EdDsa],
        now: NOW,
        skew: 60,
        max_age: 3600,
    }
}

/// A refusal has a code; an acceptance kept the rules.
fn check(result: Result<SecurityEvent, SetError>, signed: bool) {
    match result {
        Err(error) => {
            assert!(CODES.contains(&error.code()), "{error}");
            assert!(!error.to_string().is_empty());
        }
        Ok(event) => {
            assert!(signed, "an unsigned input was accepted: {event:?}");
            assert_eq!(event.issuer, ISSUER);
            assert!(!event.jti.is_empty() && event.jti.len() <= 256);
            assert!(event.iat <= NOW + 60 && event.iat >= NOW - 3600);
            assert!(event.occurred_at <= event.iat + 60);
            assert!(event.subject.is_some() || !event.event.needs_subject());
        }
    }
}

/// A valid SET's claims, which the fuzzed inputs mutate.
fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "jti": "j",
        "sub_id": {"format": "opaque", "id": "u"},
        "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}},
    })
}

/// The input as members that replace a valid SET's (`{...}` or the
/// `"name": value, ...` inside one), so mutations reach the claim, event
/// and subject checks behind the signature.
fn mutated(text: &str) -> Option<Value> {
    let patch: serde_json::Map<String, Value> = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&format!("{{{text}}}")))
        .ok()?;
    let mut claims = good_claims();
    for (name, value) in patch {
        claims[name] = value;
    }
    Some(claims)
}

/// Any bytes as a SET; as members of a signed valid SET; as a signed SET's
/// whole payload and as its header when they are JSON. (Signing only
/// inputs that parse keeps the stable property run fast in debug builds.)
pub fn signals_set(data: &[u8]) {
    let (key, jwks) = transmitter();
    let rules = rules();
    let header = json!({"alg": "EdDSA", "typ": "secevent+jwt", "kid": key.kid()});
    let Ok(text) = std::str::from_utf8(data) else { return };
    check(validate(text, jwks, &rules), false);
    if let Some(claims) = mutated(text) {
        let token = mint(&header, claims.to_string().as_bytes(), key);
        check(validate(&token, jwks, &rules), true);
    }
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        check(validate(&mint(&header, data, key), jwks, &rules), true);
        let token = mint(&json, good_claims().to_string().as_bytes(), key);
        check(validate(&token, jwks, &rules), true);
    }
}
