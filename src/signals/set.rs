//! Validating one Security Event Token: a compact JWS from the transmitter
//! becomes a [`SecurityEvent`] or a [`SetError`] that names the refusal
//! and its RFC 8935 error code. Pure: the caller brings the transmitter's
//! keys, its rules and the time, and keeps `jti`s against replay.
//!
//! The checks, in order (SSF 1.0 §4, RFC 8417 §2, RFC 8935 §2.4): size,
//! compact JWS and not JWE, an allowed asymmetric algorithm, a signature by
//! a key of the transmitter's JWKS, `typ`, `iss`, `aud`, `iat` within the
//! window, `exp` if any, `jti`, exactly one event, and its subject.

use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKeySet;
use serde_json::Value;

use super::events::{self, numeric_date, Event, EventContext, EventError};
use super::subject::{clip, Subject, SubjectError};
use crate::identity::Claims;
use crate::jws::{self, JwsError};

/// Larger tokens are refused before any decoding: a SET names one event.
pub const MAX_SET_BYTES: usize = 64 * 1024;

/// RFC 7519 leaves `jti` unbounded; the store keeps it, so it is bounded.
pub const MAX_JTI_BYTES: usize = 256;

/// What a SET must satisfy for one transmitter.
#[derive(Debug, Clone, Copy)]
pub struct SetRules<'a> {
    /// The transmitter's issuer, compared exactly.
    pub issuer: &'a str,
    /// doorward's audience, which `aud` must contain.
    pub audience: &'a str,
    /// The signing algorithms accepted (HMAC and `none` never are).
    pub algorithms: &'a [CoreJwsSigningAlgorithm],
    /// Seconds since the epoch.
    pub now: i64,
    /// Clock skew tolerated, in seconds.
    pub skew: i64,
    /// How old (`iat`) a SET may be, in seconds: the `jti` store must keep
    /// markers at least this long, or a captured SET could be replayed.
    pub max_age: i64,
}

/// A validated SET: one event about one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub jti: String,
    pub issuer: String,
    pub iat: i64,
    /// When the event happened: `event_timestamp`, else RFC 8417's `toe`,
    /// else `iat`. Events about one subject apply in this order.
    pub occurred_at: i64,
    /// `None` only for stream events (verification, stream-updated).
    pub subject: Option<Subject>,
    pub event: Event,
    /// Who started it and why, for the log.
    pub context: EventContext,
    /// `txn`: the transmitter's transaction id, linking related events.
    pub txn: Option<String>,
}

/// Why a SET was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("the SET is larger than {MAX_SET_BYTES} bytes")]
    TooLarge,
    #[error("the SET is encrypted (JWE); only signed SETs are accepted")]
    Encrypted,
    #[error("the SET is not a compact JWS with a JSON header and payload")]
    Malformed,
    #[error("signature algorithm `{0}` is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("no key in the transmitter's JWKS matches the SET's key id")]
    UnknownKey,
    #[error("the SET's signature does not verify")]
    BadSignature,
    #[error("header typ `{}` is not secevent+jwt", .0.as_deref().unwrap_or("(none)"))]
    WrongType(Option<String>),
    #[error("claim `{0}` is missing or malformed")]
    BadClaim(&'static str),
    #[error("issuer `{0}` is not the transmitter's")]
    WrongIssuer(String),
    #[error("the SET is not meant for this audience")]
    WrongAudience,
    #[error("the SET was issued in the future (iat beyond the clock skew)")]
    IssuedInFuture,
    #[error("the SET is older than the accepted window (iat)")]
    TooOld,
    #[error("the SET has expired")]
    Expired,
    #[error("jti is longer than {MAX_JTI_BYTES} bytes")]
    JtiTooLong,
    #[error("the SET carries {0} events; exactly one is accepted")]
    EventCount(usize),
    #[error("event {event}: {error}")]
    Event { event: String, error: EventError },
    #[error("the event is said to occur after the SET was issued")]
    EventAfterIssue,
    #[error("the subject: {0}")]
    Subject(SubjectError),
    #[error("event {0} names no subject (sub_id)")]
    NoSubject(&'static str),
}

impl SetError {
    /// The RFC 8935 §2.4 `err` code a push answer carries.
    pub fn code(&self) -> &'static str {
        match self {
            SetError::AlgorithmNotAllowed(_) | SetError::UnknownKey | SetError::BadSignature => "invalid_key",
            SetError::WrongIssuer(_) => "invalid_issuer",
            SetError::WrongAudience => "invalid_audience",
            SetError::TooLarge
            | SetError::Encrypted
            | SetError::Malformed
            | SetError::WrongType(_)
            | SetError::BadClaim(_)
            | SetError::IssuedInFuture
            | SetError::TooOld
            | SetError::Expired
            | SetError::JtiTooLong
            | SetError::EventCount(_)
            | SetError::Event { .. }
            | SetError::EventAfterIssue
            | SetError::Subject(_)
            | SetError::NoSubject(_) => "invalid_request",
        }
    }

    /// No key matched the `kid`: the transmitter may have rotated its keys,
    /// so the caller refetches the JWKS once and validates again.
    pub fn unknown_key(&self) -> bool {
        matches!(self, SetError::UnknownKey)
    }
}

impl From<JwsError> for SetError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed => SetError::Malformed,
            JwsError::AlgorithmNotAllowed(alg) => SetError::AlgorithmNotAllowed(clip(&alg)),
            JwsError::NoMatchingKey => SetError::UnknownKey,
            JwsError::BadSignature => SetError::BadSignature,
        }
    }
}

/// Validates one SET against the transmitter's keys and rules.
pub fn validate(
    token: &str,
    jwks: &JsonWebKeySet<CoreJsonWebKey>,
    rules: &SetRules<'_>,
) -> Result<SecurityEvent, SetError> {
    if token.len() > MAX_SET_BYTES {
        return Err(SetError::TooLarge);
    }
    // A JWE has five parts. Refused by name: the receiver cannot decrypt,
    // and must not mistake one for a malformed JWS in its logs.
    if token.split('.').count() == 5 {
        return Err(SetError::Encrypted);
    }
    let verified = jws::verify_signature(token, jwks, rules.algorithms)?;
    // SSF 1.0 §4.1.1: explicit typing keeps an ID token or an access token
    // signed by the same keys from passing as a SET.
    let typ_ok = verified.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case("secevent+jwt") || typ.eq_ignore_ascii_case("application/secevent+jwt")
    });
    if !typ_ok {
        return Err(SetError::WrongType(verified.typ.as_deref().map(clip)));
    }
    let claims = &verified.claims;
    let issuer = string(claims, "iss")?.ok_or(SetError::BadClaim("iss"))?;
    if issuer != rules.issuer {
        return Err(SetError::WrongIssuer(clip(issuer)));
    }
    check_audience(claims, rules.audience)?;
    let iat = time(claims, "iat")?.ok_or(SetError::BadClaim("iat"))?;
    if iat > rules.now.saturating_add(rules.skew) {
        return Err(SetError::IssuedInFuture);
    }
    if iat < rules.now.saturating_sub(rules.max_age) {
        return Err(SetError::TooOld);
    }
    if let Some(exp) = time(claims, "exp")? {
        if exp <= rules.now.saturating_sub(rules.skew) {
            return Err(SetError::Expired);
        }
    }
    let jti = string(claims, "jti")?
        .filter(|jti| !jti.is_empty())
        .ok_or(SetError::BadClaim("jti"))?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(SetError::JtiTooLong);
    }
    let txn = string(claims, "txn")?.map(str::to_string);
    let (uri, payload) = the_one_event(claims)?;
    let (event, context) = events::parse(uri, payload).map_err(|error| SetError::Event {
        event: clip(uri),
        error,
    })?;
    // An event cannot have happened after its SET was issued; a later
    // time would let one SET outrank every future event in the ordering.
    let occurred_at = match context.event_timestamp {
        Some(at) => at,
        None => time(claims, "toe")?.unwrap_or(iat),
    };
    if occurred_at > iat.saturating_add(rules.skew) {
        return Err(SetError::EventAfterIssue);
    }
    // SSF 1.0 puts the subject in `sub_id`; CAEP's drafts in the event.
    let subject = match claims.get("sub_id").or_else(|| payload.get("subject")) {
        Some(value) => Some(Subject::parse(value).map_err(SetError::Subject)?),
        None if event.needs_subject() => return Err(SetError::NoSubject(event.name())),
        None => None,
    };
    Ok(SecurityEvent {
        jti: jti.to_string(),
        issuer: issuer.to_string(),
        iat,
        occurred_at,
        subject,
        event,
        context,
        txn,
    })
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn check_audience(claims: &Claims, audience: &str) -> Result<(), SetError> {
    let ours = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
        _ => return Err(SetError::BadClaim("aud")),
    };
    if ours {
        Ok(())
    } else {
        Err(SetError::WrongAudience)
    }
}

/// RFC 8417 §2.2: `events` is an object of event URIs; SSF 1.0 §4.1.8
/// allows exactly one per SET.
fn the_one_event(claims: &Claims) -> Result<(&str, &Value), SetError> {
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or(SetError::BadClaim("events"))?;
    let mut members = events.iter();
    match (members.next(), members.next()) {
        (Some((uri, payload)), None) => Ok((uri.as_str(), payload)),
        _ => Err(SetError::EventCount(events.len())),
    }
}

/// An optional string claim; present with another type is malformed.
fn string<'c>(claims: &'c Claims, name: &'static str) -> Result<Option<&'c str>, SetError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(SetError::BadClaim(name)),
    }
}

fn time(claims: &Claims, name: &'static str) -> Result<Option<i64>, SetError> {
    numeric_date(claims.get(name)).map_err(|()| SetError::BadClaim(name))
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
