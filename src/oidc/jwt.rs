//! Verifying JWTs that are not ID tokens (back-channel logout tokens and
//! bearer access tokens) against the provider's JWKS. The signature check
//! is `crate::jws` (openidconnect's key operations); the claim checks each
//! token type needs are here.

use crate::identity::Claims;
use crate::jws::{decode_json, JwsError, Verified};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Decoding or the signature; its messages are unchanged by the wrap.
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("claim `{0}` is missing or malformed")]
    MissingClaim(&'static str),
    #[error("issuer `{0}` is not the provider's")]
    WrongIssuer(String),
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet or was issued in the future")]
    NotYetValid,
    #[error("this is not a back-channel logout token: {0}")]
    NotALogoutToken(&'static str),
    #[error("an ID token is not accepted as a bearer token (insecure_accept_id_token_as_bearer is off)")]
    IdTokenAsBearer,
}

/// Decodes a JWT's payload without verifying it. Only for tokens that were
/// verified already (the ID token, after openidconnect checked it).
pub fn payload_unverified(token: &str) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (_, Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed.into());
    };
    Ok(decode_json(payload)?)
}

/// Time and audience rules shared by every token kind.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    pub now: i64,
    pub skew: i64,
    /// Whether `exp` must be present.
    pub require_exp: bool,
}

fn int_claim(claims: &Claims, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(JwtError::MissingClaim(name)),
    }
}

/// iss, aud, exp, nbf and iat, with bounded clock skew.
pub fn check_common(claims: &Claims, want: &Expectations<'_>) -> Result<(), JwtError> {
    let iss = claims
        .get("iss")
        .and_then(|v| v.as_str())
        .ok_or(JwtError::MissingClaim("iss"))?;
    if iss != want.issuer {
        return Err(JwtError::WrongIssuer(iss.to_string()));
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => want.audiences.iter().any(|a| a == aud),
        Some(serde_json::Value::Array(auds)) => auds
            .iter()
            .filter_map(|a| a.as_str())
            .any(|aud| want.audiences.iter().any(|a| a == aud)),
        _ => return Err(JwtError::MissingClaim("aud")),
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    match int_claim(claims, "exp")? {
        Some(exp) if want.now - want.skew >= exp => return Err(JwtError::Expired),
        None if want.require_exp => return Err(JwtError::MissingClaim("exp")),
        _ => {}
    }
    if let Some(nbf) = int_claim(claims, "nbf")? {
        if nbf > want.now + want.skew {
            return Err(JwtError::NotYetValid);
        }
    }
    let iat = int_claim(claims, "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
    if iat > want.now + want.skew {
        return Err(JwtError::NotYetValid);
    }
    Ok(())
}

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub jti: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
    /// Until when the jti must be remembered.
    pub expires_at: i64,
}

/// OpenID Connect Back-Channel Logout 1.0 §2.6: everything a logout token
/// must and must not carry.
pub fn check_logout_token(verified: &Verified, want: &Expectations<'_>) -> Result<LogoutClaims, JwtError> {
    if let Some(typ) = &verified.typ {
        if !typ.eq_ignore_ascii_case("logout+jwt") && !typ.eq_ignore_ascii_case("jwt") {
            return Err(JwtError::NotALogoutToken("wrong typ"));
        }
    }
    let claims = &verified.claims;
    check_common(claims, want)?;
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or(JwtError::MissingClaim("jti"))?;
    let event_ok = claims
        .get("events")
        .and_then(|e| e.as_object())
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(|v| v.is_object());
    if !event_ok {
        return Err(JwtError::NotALogoutToken("no back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(JwtError::NotALogoutToken("a logout token must not carry a nonce"));
    }
    let string = |name: &str| {
        claims
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (sub, sid) = (string("sub"), string("sid"));
    if sub.is_none() && sid.is_none() {
        return Err(JwtError::MissingClaim("sub or sid"));
    }
    // A token without `exp` (the spec makes it optional) is only good for
    // a short while after `iat`: otherwise a captured one could be replayed
    // once its jti marker is purged.
    let iat = int_claim(claims, "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
    let exp = match int_claim(claims, "exp")? {
        Some(exp) => exp,
        None if iat + LOGOUT_TOKEN_WINDOW < want.now - want.skew => return Err(JwtError::Expired),
        None => iat + LOGOUT_TOKEN_WINDOW,
    };
    Ok(LogoutClaims {
        jti: jti.to_string(),
        sub,
        sid,
        expires_at: exp.max(want.now) + want.skew,
    })
}

/// How long a logout token without `exp` is accepted after its `iat`.
pub const LOGOUT_TOKEN_WINDOW: i64 = 120;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: serde_json::Value) -> Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    fn want(audiences: &[String]) -> Expectations<'_> {
        Expectations {
            issuer: "https://idp.test",
            audiences,
            now: 1_000_000,
            skew: 60,
            require_exp: true,
        }
    }

    fn logout(v: serde_json::Value) -> Verified {
        Verified {
            typ: Some("logout+jwt".into()),
            kid: None,
            claims: claims(v),
        }
    }

    fn good() -> serde_json::Value {
        json!({
            "iss": "https://idp.test", "aud": "doorward", "iat": 1_000_000, "exp": 1_000_120,
            "jti": "j1", "sid": "s1", "sub": "alice",
            "events": {BACKCHANNEL_EVENT: {}}
        })
    }

    #[test]
    fn a_valid_logout_token_passes() {
        let aud = ["doorward".to_string()];
        let out = check_logout_token(&logout(good()), &want(&aud)).expect("valid");
        assert_eq!(out.sid.as_deref(), Some("s1"));
        assert_eq!(out.jti, "j1");
    }

    #[test]
    fn logout_token_attacks_are_refused_with_their_reason() {
        let aud = ["doorward".to_string()];
        let cases: Vec<(&str, serde_json::Value, JwtError)> = vec![
            (
                "iss",
                json!("https://evil.test"),
                JwtError::WrongIssuer("https://evil.test".into()),
            ),
            ("aud", json!("someone-else"), JwtError::WrongAudience),
            ("exp", json!(999_000), JwtError::Expired),
            ("iat", json!(1_000_500), JwtError::NotYetValid),
            (
                "nonce",
                json!("n"),
                JwtError::NotALogoutToken("a logout token must not carry a nonce"),
            ),
            (
                "events",
                json!({"other": {}}),
                JwtError::NotALogoutToken("no back-channel logout event"),
            ),
        ];
        for (claim, value, expected) in cases {
            let mut token = good();
            token[claim] = value;
            assert_eq!(
                check_logout_token(&logout(token), &want(&aud)),
                Err(expected),
                "{claim}"
            );
        }
        for claim in ["jti", "iat", "iss", "aud"] {
            let mut token = good();
            token.as_object_mut().map(|o| o.remove(claim));
            assert!(
                check_logout_token(&logout(token), &want(&aud)).is_err(),
                "{claim} missing"
            );
        }
        // No exp: good shortly after iat, refused well after it.
        let mut token = good();
        token.as_object_mut().map(|o| o.remove("exp"));
        let optional_exp = Expectations {
            require_exp: false,
            ..want(&aud)
        };
        assert!(check_logout_token(&logout(token.clone()), &optional_exp).is_ok());
        token["iat"] = json!(1_000_000 - LOGOUT_TOKEN_WINDOW - 61);
        assert_eq!(
            check_logout_token(&logout(token), &optional_exp),
            Err(JwtError::Expired)
        );
        let mut token = good();
        token.as_object_mut().map(|o| {
            o.remove("sid");
            o.remove("sub")
        });
        assert_eq!(
            check_logout_token(&logout(token), &want(&aud)),
            Err(JwtError::MissingClaim("sub or sid"))
        );
        let wrong_typ = Verified {
            typ: Some("JWT+id".into()),
            kid: None,
            claims: claims(good()),
        };
        assert!(check_logout_token(&wrong_typ, &want(&aud)).is_err());
    }

    #[test]
    fn skew_is_bounded() {
        let aud = ["doorward".to_string()];
        let mut token = good();
        token["exp"] = json!(1_000_000 - 30);
        assert!(
            check_logout_token(&logout(token.clone()), &want(&aud)).is_ok(),
            "within skew"
        );
        token["exp"] = json!(1_000_000 - 61);
        assert_eq!(check_logout_token(&logout(token), &want(&aud)), Err(JwtError::Expired));
    }

    #[test]
    fn signature_errors_keep_their_messages_through_the_wrap() {
        // e2e tests and operators' log searches know these texts.
        let cases = [
            (JwsError::Malformed, "not a compact JWS"),
            (
                JwsError::AlgorithmNotAllowed("HS256".into()),
                "signature algorithm `HS256` is not allowed",
            ),
            (
                JwsError::NoMatchingKey,
                "no key in the provider's JWKS matches the token's key id",
            ),
            (JwsError::BadSignature, "the signature does not verify"),
        ];
        for (error, text) in cases {
            assert_eq!(JwtError::from(error).to_string(), text);
        }
    }
}
