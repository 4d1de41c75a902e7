//! Every SET check, shown refusing its attack with its exact error and
//! RFC 8935 code: tokens are signed by a key the transmitter's JWKS holds,
//! then altered one claim (or header member) at a time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::assertion::keys::SigningKey;
use crate::fuzz_targets::mint;
use crate::signals::events::{ChangeType, CredentialType};
use crate::signals::subject::SubjectId;

const ISSUER: &str = "https://tx.test";
const AUDIENCE: &str = "https://dw.test";
const NOW: i64 = 1_000_000;
const DEVICE: &str = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change";
const REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

struct Fixture {
    key: SigningKey,
    jwks: JsonWebKeySet<CoreJsonWebKey>,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate();
    let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk()).expect("jwk");
    Fixture {
        jwks: JsonWebKeySet::new(vec![jwk]),
        key,
    }
}

const ALGORITHMS: &[CoreJwsSigningAlgorithm] = &[CoreJwsSigningAlgorithm::EdDsa];

fn rules() -> SetRules<'static> {
    SetRules {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ALGORITHMS,
        now: NOW,
        skew: 60,
        max_age: 86_400,
    }
}

fn header(fx: &Fixture) -> Value {
    json!({"alg": "EdDSA", "typ": "secevent+jwt", "kid": fx.key.kid()})
}

fn good() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": NOW - 5, "jti": "set-1", "txn": "t-9",
        "sub_id": {"format": "iss_sub", "iss": "https://idp.test", "sub": "alice"},
        "events": {REVOKED: {"event_timestamp": NOW - 30, "initiating_entity": "admin"}},
    })
}

fn check(fx: &Fixture, header: &Value, claims: &Value) -> Result<SecurityEvent, SetError> {
    validate(
        &mint(header, claims.to_string().as_bytes(), &fx.key),
        &fx.jwks,
        &rules(),
    )
}

#[test]
fn a_valid_set_becomes_a_typed_event() {
    let fx = fixture();
    let event = check(&fx, &header(&fx), &good()).expect("valid");
    assert_eq!(event.jti, "set-1");
    assert_eq!(event.issuer, ISSUER);
    assert_eq!(event.iat, NOW - 5);
    assert_eq!(event.occurred_at, NOW - 30, "event_timestamp orders the event");
    assert_eq!(event.txn.as_deref(), Some("t-9"));
    assert_eq!(event.event, Event::SessionRevoked);
    assert_eq!(
        event.subject.and_then(|s| s.user),
        Some(SubjectId::IssSub {
            iss: "https://idp.test".into(),
            sub: "alice".into()
        })
    );
    assert_eq!(event.context.initiating_entity, Some(events::InitiatingEntity::Admin));
}

#[test]
fn occurred_at_falls_back_to_toe_then_iat() {
    let fx = fixture();
    let mut claims = good();
    claims["events"] = json!({REVOKED: {}});
    assert_eq!(check(&fx, &header(&fx), &claims).map(|e| e.occurred_at), Ok(NOW - 5));
    claims["toe"] = json!(NOW - 100);
    assert_eq!(check(&fx, &header(&fx), &claims).map(|e| e.occurred_at), Ok(NOW - 100));
}

#[test]
fn the_subject_comes_from_sub_id_else_from_the_event() {
    let fx = fixture();
    let mut claims = good();
    claims.as_object_mut().map(|o| o.remove("sub_id"));
    claims["events"] = json!({
        "https://schemas.openid.net/secevent/caep/event-type/credential-change": {
            "credential_type": "password", "change_type": "update",
            "subject": {"user": {"format": "email", "email": "a@x.test"},
                        "session": {"format": "opaque", "id": "sid-1"}},
        }
    });
    let event = check(&fx, &header(&fx), &claims).expect("valid");
    assert_eq!(
        event.event,
        Event::CredentialChange {
            credential_type: Some(CredentialType::Password),
            change_type: Some(ChangeType::Update)
        }
    );
    let subject = event.subject.expect("subject");
    assert_eq!(subject.user, Some(SubjectId::Email("a@x.test".into())));
    assert_eq!(subject.session, Some(SubjectId::Opaque("sid-1".into())));
    // sub_id wins over the event's member.
    claims["sub_id"] = json!({"format": "opaque", "id": "u-7"});
    let event = check(&fx, &header(&fx), &claims).expect("valid");
    assert_eq!(
        event.subject.and_then(|s| s.user),
        Some(SubjectId::Opaque("u-7".into()))
    );
}

#[test]
fn stream_events_need_no_subject_and_others_do() {
    let fx = fixture();
    let mut claims = good();
    claims.as_object_mut().map(|o| o.remove("sub_id"));
    assert_eq!(
        check(&fx, &header(&fx), &claims).err(),
        Some(SetError::NoSubject("session-revoked"))
    );
    claims["events"] = json!({VERIFICATION: {"state": "abc"}});
    let event = check(&fx, &header(&fx), &claims).expect("verification");
    assert_eq!(event.subject, None);
    assert_eq!(
        event.event,
        Event::Verification {
            state: Some("abc".into())
        }
    );
}

#[test]
fn claim_attacks_are_refused_with_their_reason_and_code() {
    let fx = fixture();
    let cases: Vec<(&str, Value, SetError, &str)> = vec![
        (
            "iss",
            json!("https://evil.test"),
            SetError::WrongIssuer("https://evil.test".into()),
            "invalid_issuer",
        ),
        ("iss", json!(7), SetError::BadClaim("iss"), "invalid_request"),
        (
            "aud",
            json!("https://other.test"),
            SetError::WrongAudience,
            "invalid_audience",
        ),
        ("aud", json!(["a", "b"]), SetError::WrongAudience, "invalid_audience"),
        ("aud", json!(1), SetError::BadClaim("aud"), "invalid_request"),
        ("iat", json!(NOW + 61), SetError::IssuedInFuture, "invalid_request"),
        ("iat", json!(NOW - 86_401), SetError::TooOld, "invalid_request"),
        ("iat", json!("now"), SetError::BadClaim("iat"), "invalid_request"),
        ("exp", json!(NOW - 61), SetError::Expired, "invalid_request"),
        ("jti", json!(""), SetError::BadClaim("jti"), "invalid_request"),
        ("jti", json!("j".repeat(257)), SetError::JtiTooLong, "invalid_request"),
        ("txn", json!(5), SetError::BadClaim("txn"), "invalid_request"),
        ("events", json!({}), SetError::EventCount(0), "invalid_request"),
        (
            "events",
            json!({REVOKED: {}, VERIFICATION: {}}),
            SetError::EventCount(2),
            "invalid_request",
        ),
        (
            "events",
            json!([REVOKED]),
            SetError::BadClaim("events"),
            "invalid_request",
        ),
        (
            "events",
            json!({REVOKED: {"event_timestamp": NOW + 3600}}),
            SetError::EventAfterIssue,
            "invalid_request",
        ),
        (
            "events",
            json!({DEVICE: {"current_status": "compliantish"}}),
            SetError::Event {
                event: DEVICE.into(),
                error: events::EventError::UnknownValue {
                    member: "current_status",
                    value: "compliantish".into(),
                },
            },
            "invalid_request",
        ),
        (
            "sub_id",
            json!({"format": "x509"}),
            SetError::Subject(SubjectError::UnknownFormat("x509".into())),
            "invalid_request",
        ),
    ];
    for (claim, value, expected, code) in cases {
        let mut claims = good();
        claims[claim] = value;
        let error = check(&fx, &header(&fx), &claims).expect_err(claim);
        assert_eq!(error, expected, "{claim}");
        assert_eq!(error.code(), code, "{claim}");
        assert!(!error.unknown_key());
    }
    for claim in ["iss", "aud", "iat", "jti", "events"] {
        let mut claims = good();
        claims.as_object_mut().map(|o| o.remove(claim));
        assert_eq!(
            check(&fx, &header(&fx), &claims).err(),
            Some(SetError::BadClaim(claim)),
            "{claim} missing"
        );
    }
    // Within the skew and the window, and a top-level `sub` is ignored.
    let mut claims = good();
    claims["iat"] = json!(NOW + 59);
    claims["exp"] = json!(NOW + 600);
    claims["sub"] = json!("ignored");
    claims["events"] = json!({REVOKED: {}});
    assert!(check(&fx, &header(&fx), &claims).is_ok());
    claims["aud"] = json!(["someone", AUDIENCE]);
    claims["iat"] = json!(NOW - 86_400);
    assert!(check(&fx, &header(&fx), &claims).is_ok());
}

#[test]
fn header_and_signature_attacks_are_refused_with_their_code() {
    let fx = fixture();
    let kid = fx.key.kid().to_string();
    let cases = [
        (
            json!({"alg": "EdDSA", "kid": kid}),
            SetError::WrongType(None),
            "invalid_request",
        ),
        (
            json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"}),
            SetError::WrongType(Some("JWT".into())),
            "invalid_request",
        ),
        (
            json!({"alg": "HS256", "kid": kid, "typ": "secevent+jwt"}),
            SetError::AlgorithmNotAllowed("HS256".into()),
            "invalid_key",
        ),
        (
            json!({"alg": "ES256", "kid": kid, "typ": "secevent+jwt"}),
            SetError::AlgorithmNotAllowed("ES256".into()),
            "invalid_key",
        ),
        (
            json!({"alg": "EdDSA", "kid": "rotated-away", "typ": "secevent+jwt"}),
            SetError::UnknownKey,
            "invalid_key",
        ),
    ];
    for (head, expected, code) in cases {
        let error = check(&fx, &head, &good()).expect_err("refused");
        assert_eq!(error, expected, "{head}");
        assert_eq!(error.code(), code, "{head}");
        assert_eq!(error.unknown_key(), expected == SetError::UnknownKey);
    }
    // The media-type spelling of typ, in any case, is accepted.
    let head = json!({"alg": "EdDSA", "kid": kid, "typ": "Application/SecEvent+JWT"});
    assert!(check(&fx, &head, &good()).is_ok());

    let token = mint(&header(&fx), good().to_string().as_bytes(), &fx.key);
    // Signed by another key under the same kid.
    let other = SigningKey::generate();
    let forged = mint(&header(&fx), good().to_string().as_bytes(), &other);
    assert_eq!(
        validate(&forged, &fx.jwks, &rules()).err(),
        Some(SetError::BadSignature)
    );
    // alg none, unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "secevent+jwt"}).to_string()),
        URL_SAFE_NO_PAD.encode(good().to_string())
    );
    let error = validate(&none, &fx.jwks, &rules()).expect_err("none");
    assert_eq!(
        (error.code(), error),
        ("invalid_key", SetError::AlgorithmNotAllowed("none".into()))
    );
    // A JWE, and a token that is not a JWS at all.
    assert_eq!(
        validate("a.b.c.d.e", &fx.jwks, &rules()).err(),
        Some(SetError::Encrypted)
    );
    assert_eq!(validate("a.b", &fx.jwks, &rules()).err(), Some(SetError::Malformed));
    assert_eq!(SetError::Malformed.code(), "invalid_request");
    // Oversized: refused before anything is decoded.
    let huge = format!("{token}{}", "A".repeat(MAX_SET_BYTES));
    assert_eq!(validate(&huge, &fx.jwks, &rules()).err(), Some(SetError::TooLarge));
    // No refusal message repeats the token.
    for error in [SetError::BadSignature, SetError::TooLarge, SetError::WrongAudience] {
        assert!(!error.to_string().contains(&token));
    }
}
