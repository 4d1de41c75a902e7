//! Every ID token check, shown refusing its attack: tokens are minted with
//! a key the provider's JWKS trusts, then altered one claim at a time.
//! (The whole flow against a real provider is in tests/e2e/oidc.rs.)

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreIdToken, CoreJsonWebKey};
use openidconnect::{AccessToken, JsonWebKeySet, Nonce};
use serde_json::{json, Value};

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::AccessTokenHash;

use super::*;
use crate::assertion::keys::SigningKey;
use crate::identity::Claims;
use crate::idp_http::IdpHttp;

const ISSUER: &str = "https://idp.test";
const REDIRECT: &str = "https://dw.test/_doorward/callback";

struct Fixture {
    provider: OidcProvider,
    metadata: Arc<Metadata>,
    key: SigningKey,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate();
    let config: OidcProviderConfig = toml::from_str(&format!(
        "name = 't'\nissuer = '{ISSUER}'\nclient_id = 'doorward'\n\
         client_secret = 'a-client-secret-that-could-sign-hs256'\nallowed_algs = ['EdDSA']\nclock_skew = '60s'\n"
    ))
    .expect("provider config");
    let tls = crate::tls::client_config(None).expect("tls");
    let provider =
        OidcProvider::new(&config, IdpHttp::new(tls, Duration::from_secs(1)), Clock::system()).expect("provider");
    let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk()).expect("jwk");
    let metadata: Metadata = serde_json::from_value(json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        // Unreachable: an unknown kid's JWKS refresh must fail, not hang.
        "jwks_uri": "http://127.0.0.1:9/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }))
    .expect("metadata");
    let metadata = metadata.set_jwks(JsonWebKeySet::new(vec![jwk]));
    provider.set_metadata(metadata.clone());
    Fixture {
        provider,
        metadata: Arc::new(metadata),
        key,
    }
}

fn now() -> i64 {
    Clock::system().now()
}

fn good_claims(access_token: &str, fx: &Fixture) -> Value {
    json!({
        "iss": ISSUER, "aud": "doorward", "sub": "alice", "iat": now(), "exp": now() + 300,
        "nonce": "n-123", "at_hash": at_hash(access_token, fx),
    })
}

fn at_hash(access_token: &str, fx: &Fixture) -> String {
    let jwk: CoreJsonWebKey = serde_json::from_value(fx.key.public_jwk()).expect("jwk");
    AccessTokenHash::from_token(
        &AccessToken::new(access_token.into()),
        &CoreJwsSigningAlgorithm::EdDsa,
        &jwk,
    )
    .expect("hash")
    .to_string()
}

fn mint(header: Value, claims: &Value, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
}

fn header(fx: &Fixture) -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": fx.key.kid()})
}

async fn verify(fx: &Fixture, token: &str, access_token: &str) -> Result<Claims, OidcError> {
    let id_token =
        CoreIdToken::from_str(token).map_err(|e| OidcError::IdToken(IdTokenCheck::Malformed(e.to_string())))?;
    fx.provider
        .verify_id_token(
            &fx.metadata,
            REDIRECT,
            &id_token,
            Some(&Nonce::new("n-123".into())),
            &AccessToken::new(access_token.into()),
        )
        .await
}

/// The failure a test expects, by variant.
#[derive(Debug, PartialEq)]
enum Want {
    Check(IdTokenCheck),
    AuthorizedParty,
    AccessTokenHash,
    Malformed,
}

fn what(result: Result<Claims, OidcError>) -> Option<Want> {
    match result {
        Ok(_) => None,
        Err(OidcError::IdToken(IdTokenCheck::Malformed(_))) => Some(Want::Malformed),
        Err(OidcError::IdToken(check)) => Some(Want::Check(check)),
        Err(OidcError::WrongAuthorizedParty) => Some(Want::AuthorizedParty),
        Err(OidcError::AccessTokenHashMismatch) => Some(Want::AccessTokenHash),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[tokio::test]
async fn a_good_token_passes_and_each_altered_claim_is_refused() {
    let fx = fixture();
    let access = "access-token-1";
    let good = good_claims(access, &fx);
    let token = mint(header(&fx), &good, &fx.key);
    assert_eq!(verify(&fx, &token, access).await.expect("valid")["sub"], "alice");

    let cases: Vec<(&str, Value, Want)> = vec![
        ("iss", json!("https://evil.test"), Want::Check(IdTokenCheck::Issuer)),
        ("aud", json!("someone-else"), Want::Check(IdTokenCheck::Audience)),
        ("exp", json!(now() - 61), Want::Check(IdTokenCheck::Expired)),
        ("iat", json!(now() + 3600), Want::Check(IdTokenCheck::IssuedInFuture)),
        ("iat", json!(now() - 3600), Want::Check(IdTokenCheck::IssuedTooLongAgo)),
        ("nonce", json!("replayed-nonce"), Want::Check(IdTokenCheck::Nonce)),
        ("azp", json!("another-client"), Want::AuthorizedParty),
        // openidconnect refuses an untrusted extra audience before azp is looked at.
        (
            "aud",
            json!(["doorward", "another-client"]),
            Want::Check(IdTokenCheck::Audience),
        ),
        (
            "at_hash",
            json!(at_hash("a-different-access-token", &fx)),
            Want::AccessTokenHash,
        ),
    ];
    for (claim, value, want) in cases {
        let mut claims = good.clone();
        claims[claim] = value.clone();
        let token = mint(header(&fx), &claims, &fx.key);
        assert_eq!(what(verify(&fx, &token, access).await), Some(want), "{claim} = {value}");
    }
    for (claim, want) in [
        ("nonce", Want::Check(IdTokenCheck::Nonce)),
        ("exp", Want::Malformed),
        ("iat", Want::Malformed),
        ("sub", Want::Malformed),
    ] {
        let mut claims = good.clone();
        claims.as_object_mut().map(|o| o.remove(claim));
        let token = mint(header(&fx), &claims, &fx.key);
        assert_eq!(what(verify(&fx, &token, access).await), Some(want), "missing {claim}");
    }
}

#[tokio::test]
async fn the_errors_name_the_failed_check() {
    let fx = fixture();
    let access = "access-token-1";
    let mut claims = good_claims(access, &fx);
    claims["azp"] = json!("another-client");
    let token = mint(header(&fx), &claims, &fx.key);
    assert!(matches!(
        verify(&fx, &token, access).await,
        Err(OidcError::WrongAuthorizedParty)
    ));
    let claims = good_claims("the-real-access-token", &fx);
    let token = mint(header(&fx), &claims, &fx.key);
    assert!(matches!(
        verify(&fx, &token, access).await,
        Err(OidcError::AccessTokenHashMismatch)
    ));
    let mut claims = good_claims(access, &fx);
    claims["exp"] = json!(now() - 30);
    let token = mint(header(&fx), &claims, &fx.key);
    assert!(
        verify(&fx, &token, access).await.is_ok(),
        "30 s past exp is within the 60 s skew"
    );
}

#[tokio::test]
async fn forged_signatures_none_hmac_and_unknown_keys_are_refused() {
    let fx = fixture();
    let access = "access-token-1";
    let claims = good_claims(access, &fx);
    // Signed by a key the IdP never published.
    let stranger = SigningKey::generate();
    let forged = mint(json!({"alg": "EdDSA", "kid": fx.key.kid()}), &claims, &stranger);
    assert_eq!(
        what(verify(&fx, &forged, access).await),
        Some(Want::Check(IdTokenCheck::Signature)),
        "foreign key"
    );
    // Unknown kid: the JWKS is re-fetched (unreachable here) and the token refused.
    let unknown = mint(json!({"alg": "EdDSA", "kid": "not-published"}), &claims, &stranger);
    assert_eq!(
        what(verify(&fx, &unknown, access).await),
        Some(Want::Check(IdTokenCheck::NoMatchingKey)),
        "unknown kid"
    );
    // alg none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert!(verify(&fx, &none, access).await.is_err(), "alg none");
    // HS256 with the client secret as key (alg confusion): not allowed.
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"a-client-secret-that-could-sign-hs256").expect("mac");
    mac.update(input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert_eq!(
        what(verify(&fx, &hs, access).await),
        Some(Want::Check(IdTokenCheck::Algorithm)),
        "HS256 not in allowed_algs"
    );
    // A payload altered after signing.
    let good = mint(header(&fx), &claims, &fx.key);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut altered = claims.clone();
    altered["sub"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(altered.to_string());
    assert_eq!(
        what(verify(&fx, &parts.join("."), access).await),
        Some(Want::Check(IdTokenCheck::Signature)),
        "altered payload"
    );
}

#[test]
fn the_key_generation_moves_only_when_the_published_keys_change() {
    let fx = fixture();
    let first = fx.provider.keys_generation();
    // The scheduled refresh re-reads the same keys: cached verdicts stay.
    fx.provider.set_metadata((*fx.metadata).clone());
    assert_eq!(fx.provider.keys_generation(), first);
    // The IdP replaced its key: every cached verdict must be checked again.
    let other: CoreJsonWebKey = serde_json::from_value(SigningKey::generate().public_jwk()).expect("jwk");
    fx.provider
        .set_metadata((*fx.metadata).clone().set_jwks(JsonWebKeySet::new(vec![other])));
    assert_ne!(fx.provider.keys_generation(), first);
}
