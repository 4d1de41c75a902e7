//! The bodies of the fuzz targets: each takes arbitrary bytes, must never
//! panic, and asserts a property of what doorward makes of them.
//!
//! They live in the library, not in `fuzz/`, so that one function serves
//! twice: libFuzzer drives it through a one-line target in `fuzz/` (nightly
//! and cargo-fuzz), and [`property`] drives it on stable as a bounded,
//! seeded property test in the normal test suite, so a machine without
//! cargo-fuzz still runs every target (`scripts/fuzz-smoke.sh` picks one
//! way and says which). Being in the library also means they are compiled
//! with it: a target cannot silently stop building when an API moves.
//!
//! Test support only: hidden from the docs, and nothing calls it at run
//! time.

#[cfg(test)]
mod property;
mod request;
mod saml;
mod scim;
mod signals;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKeySet;

use crate::auth::redirect::RedirectPolicy;
use crate::identity::claim_path::ClaimPath;
use crate::identity::header_list;
use crate::jws;
use crate::oidc::jwt::{self, Expectations};
use crate::paths::{normalize, EscapedSlashes};
use crate::session::cookies;
pub use request::{forwarding, host, identity_strip};
pub use saml::saml_response;
pub use scim::{scim_filter, scim_patch_path};
pub use signals::{mint, signals_set};

/// A target: a name (its `fuzz/fuzz_targets/<name>.rs`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, as `fuzz/Cargo.toml` lists them.
pub const TARGETS: &[Target] = &[
    ("path_normalize", path_normalize),
    ("redirect_and_cookies", redirect_and_cookies),
    ("claims", claims),
    ("config", config),
    ("tokens", tokens),
    ("host", host),
    ("forwarding", forwarding),
    ("identity_strip", identity_strip),
    ("saml_response", saml_response),
    ("scim_filter", scim_filter),
    ("scim_patch_path", scim_patch_path),
    ("signals_set", signals_set),
];

/// Path normalisation never panics, and what it returns is in normal
/// form: absolute, no empty, dot or `;param` segments, and a fixed point.
pub fn path_normalize(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for mode in [EscapedSlashes::Reject, EscapedSlashes::Decode] {
        if let Ok(normal) = normalize(raw, mode) {
            assert!(normal.starts_with('/'), "{raw:?} -> {normal:?}");
            assert!(!normal.contains("//"), "{raw:?} -> {normal:?}");
            for segment in normal.split('/') {
                assert!(segment != "." && segment != "..", "{raw:?} -> {normal:?}");
                assert!(!segment.contains(';'), "{raw:?} -> {normal:?}");
            }
            let again = normalize(&normal, mode).expect("normal form normalises");
            assert_eq!(again, normal, "not a fixed point for {raw:?}");
        }
    }
}

/// Return-to validation and cookie parsing: an accepted target is never
/// protocol-relative, multi-line or on a foreign host, and doorward's
/// cookie never survives stripping.
pub fn redirect_and_cookies(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let policy = RedirectPolicy {
            own_host: "app.example.com".into(),
            allowed: vec![".example.org".into()],
        };
        if let Some(target) = policy.check(text) {
            assert!(
                !target.starts_with("//") && !target.contains('\\'),
                "{text:?} -> {target:?}"
            );
            assert!(!target.chars().any(char::is_control), "{text:?} -> {target:?}");
            if !target.starts_with('/') {
                let url = url::Url::parse(&target).expect("absolute targets parse");
                let host = url.host_str().unwrap_or_default();
                assert!(
                    host == "app.example.com" || host == "example.org" || host.ends_with(".example.org"),
                    "{target}"
                );
            }
        }
    }
    // Cookie headers are bytes, not text (obs-text is allowed).
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, value);
        let _ = cookies::find(&headers, "doorward");
        cookies::strip_own(&mut headers, "doorward");
        // No cookie named `doorward` or `doorward-login-*` is left (a pair
        // without `=` has an empty name: RFC 6265bis §5.6.3).
        for left in headers.get_all(COOKIE) {
            let ours = left.as_bytes().split(|b| *b == b';').any(|pair| {
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    return false;
                };
                let name = pair[..eq].trim_ascii();
                name == b"doorward" || name.starts_with(b"doorward-login-")
            });
            assert!(!ours, "{data:?} left {left:?}");
        }
    }
}

/// Claim paths and the header list encoding: any list of names survives
/// encode/decode on one ASCII line that is a valid header value.
pub fn claims(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let claims = serde_json::json!({"a": {"b": ["x", 1, null]}, "https://x.test/g": "y", "groups": "p,q"});
    if let (Ok(path), Some(claims)) = (ClaimPath::parse(text), claims.as_object()) {
        let _ = path.strings(claims, Some(","));
    }
    let items: Vec<String> = text.split('\u{0}').map(str::to_string).collect();
    let encoded = header_list::encode(&items);
    assert!(
        encoded.is_ascii() && !encoded.contains(['\r', '\n', ' ']),
        "{encoded:?}"
    );
    assert!(HeaderValue::from_str(&encoded).is_ok());
    if !(items.len() == 1 && items[0].is_empty()) {
        assert_eq!(header_list::decode(&encoded), items);
    }
}

/// The config loader takes whatever is in the file: errors, never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = crate::config::parse_str(text, "fuzz.toml") {
        let _ = e.to_string();
    }
}

/// JWTs from the outside (bearer and logout tokens): decoding, signature
/// checking against a JWKS and the logout-token rules never panic.
pub fn tokens(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = jwt::payload_unverified(text);
    let jwks: JsonWebKeySet<CoreJsonWebKey> = serde_json::from_str(
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]}"#,
    )
    .expect("jwks");
    let _ = jws::verify_signature(text, &jwks, &[CoreJwsSigningAlgorithm::EdDsa]);
    if let Ok(claims) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        let audiences = ["doorward".to_string()];
        let want = Expectations {
            issuer: "https://idp.test",
            audiences: &audiences,
            now: 1_000_000,
            skew: 60,
            require_exp: false,
        };
        let verified = jws::Verified {
            typ: None,
            kid: None,
            claims,
        };
        let _ = jwt::check_logout_token(&verified, &want);
        let _ = jwt::check_common(&verified.claims, &want);
    }
}
