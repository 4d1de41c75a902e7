//! JWTs from the outside (bearer and logout tokens): decoding, signature
//! checking against a JWKS and the logout-token rules never panic.
#![no_main]
use doorward::oidc::jwt::{self, Expectations};
use libfuzzer_sys::fuzz_target;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKeySet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = jwt::payload_unverified(text);
    let jwks: JsonWebKeySet<CoreJsonWebKey> = serde_json::from_str(
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]}"#,
    )
    .expect("jwks");
    let _ = jwt::verify_signature(text, &jwks, &[CoreJwsSigningAlgorithm::EdDsa]);
    if let Ok(claims) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        let audiences = ["doorward".to_string()];
        let want = Expectations { issuer: "https://idp.test", audiences: &audiences, now: 1_000_000, skew: 60, require_exp: false };
        let verified = jwt::Verified { typ: None, claims };
        let _ = jwt::check_logout_token(&verified, &want);
        let _ = jwt::check_common(&verified.claims, &want);
    }
});
