//! The security events doorward understands (CAEP 1.0, RISC 1.0 and SSF
//! 1.0's stream events), each with the typed payload the receiver acts on,
//! and the members every CAEP event may carry (time, who started it, why).
//!
//! Values from closed sets the specifications enumerate are enums. Where
//! doorward acts on the value (compliance and stream states), a value
//! outside the set refuses the SET with a precise reason, so the
//! transmitter learns of it. Where the value is only logged (credential and
//! change types, initiating entities, reasons, directions), an unknown or
//! missing one is kept as `None`: a vendor's own credential type must not
//! cost a session-ending event its effect. An event type doorward does not
//! know is accepted as [`Event::Other`] and only logged.

use serde_json::{Map, Value};

use super::subject::clip;
use crate::identity::Claims;

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
const SSF: &str = "https://schemas.openid.net/secevent/ssf/event-type/";

/// A closed set of protocol words as an enum, with its spelling both ways.
macro_rules! protocol_words {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

protocol_words!(
    /// CAEP credential-change `change_type`.
    ChangeType { Create = "create", Revoke = "revoke", Update = "update", Delete = "delete" }
);
protocol_words!(
    /// CAEP `credential_type` (also RISC credential-compromise's).
    CredentialType {
        Password = "password",
        Pin = "pin",
        X509 = "x509",
        Fido2Platform = "fido2-platform",
        Fido2Roaming = "fido2-roaming",
        FidoU2f = "fido-u2f",
        VerifiableCredential = "verifiable-credential",
        PhoneVoice = "phone-voice",
        PhoneSms = "phone-sms",
        App = "app",
    }
);
protocol_words!(
    /// CAEP device-compliance-change statuses.
    Compliance { Compliant = "compliant", NotCompliant = "not-compliant" }
);
protocol_words!(
    /// CAEP assurance-level-change `change_direction`.
    ChangeDirection { Increase = "increase", Decrease = "decrease" }
);
protocol_words!(
    /// RISC account-disabled `reason`.
    DisableReason { Hijacking = "hijacking", BulkAccount = "bulk-account" }
);
protocol_words!(
    /// SSF stream-updated `status`.
    StreamStatus { Enabled = "enabled", Paused = "paused", Disabled = "disabled" }
);
protocol_words!(
    /// CAEP `initiating_entity`: who caused the event.
    InitiatingEntity { Admin = "admin", User = "user", Policy = "policy", System = "system" }
);

/// An assurance framework (`namespace`, e.g. `NIST-AAL`, `RFC8176`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssuranceNamespace(pub String);

/// A level within an assurance framework (e.g. `nist-aal2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssuranceLevel(pub String);

/// An event and what doorward needs of its payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    SessionRevoked,
    CredentialChange {
        credential_type: Option<CredentialType>,
        change_type: Option<ChangeType>,
    },
    TokenClaimsChange {
        claims: Claims,
    },
    AssuranceLevelChange {
        namespace: AssuranceNamespace,
        current_level: AssuranceLevel,
        previous_level: Option<AssuranceLevel>,
        change_direction: Option<ChangeDirection>,
    },
    DeviceComplianceChange {
        current_status: Compliance,
        previous_status: Option<Compliance>,
    },
    SessionEstablished,
    SessionPresented,
    AccountDisabled {
        reason: Option<DisableReason>,
    },
    AccountEnabled,
    AccountPurged,
    CredentialCompromise {
        credential_type: Option<CredentialType>,
    },
    IdentifierChanged {
        new_value: Option<String>,
    },
    IdentifierRecycled,
    SessionsRevoked,
    AccountCredentialChangeRequired,
    Verification {
        state: Option<String>,
    },
    StreamUpdated {
        status: StreamStatus,
        reason: Option<String>,
    },
    /// A type doorward does not act on, by its URI (clipped for the log).
    Other(String),
}

/// A human-readable reason, by language tag (`""` when the transmitter
/// sent a plain string, as early drafts did).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(pub Vec<(String, String)>);

impl Reason {
    /// The English text, else the first one.
    pub fn text(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(lang, _)| lang.eq_ignore_ascii_case("en") || lang.starts_with("en-"))
            .or(self.0.first())
            .map(|(_, text)| text.as_str())
    }
}

/// The members any CAEP event may carry, kept for the log and for ordering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventContext {
    /// `event_timestamp` (NumericDate): when it happened at the transmitter.
    pub event_timestamp: Option<i64>,
    pub initiating_entity: Option<InitiatingEntity>,
    pub reason_admin: Option<Reason>,
    pub reason_user: Option<Reason>,
}

/// Why an event's payload was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event's payload is not a JSON object")]
    NotAnObject,
    #[error("member `{0}` is missing or not a non-empty string")]
    Missing(&'static str),
    #[error("member `{member}` has a value outside the specification's: `{value}`")]
    UnknownValue { member: &'static str, value: String },
    #[error("member `{0}` is malformed")]
    Malformed(&'static str),
}

/// Reads one event's payload, by its type URI.
pub fn parse(uri: &str, payload: &Value) -> Result<(Event, EventContext), EventError> {
    let object = payload.as_object().ok_or(EventError::NotAnObject)?;
    let read = Payload(object);
    let event = if let Some(kind) = uri.strip_prefix(CAEP) {
        match kind {
            "session-revoked" => Event::SessionRevoked,
            "credential-change" => Event::CredentialChange {
                credential_type: read.logged_word("credential_type", CredentialType::parse),
                change_type: read.logged_word("change_type", ChangeType::parse),
            },
            "token-claims-change" => Event::TokenClaimsChange {
                claims: object
                    .get("claims")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or(EventError::Missing("claims"))?,
            },
            "assurance-level-change" => Event::AssuranceLevelChange {
                namespace: AssuranceNamespace(read.text("namespace")?),
                current_level: AssuranceLevel(read.text("current_level")?),
                previous_level: read.optional_text("previous_level")?.map(AssuranceLevel),
                change_direction: read.logged_word("change_direction", ChangeDirection::parse),
            },
            "device-compliance-change" => Event::DeviceComplianceChange {
                current_status: read.word("current_status", Compliance::parse)?,
                previous_status: read.optional_word("previous_status", Compliance::parse)?,
            },
            "session-established" => Event::SessionEstablished,
            "session-presented" => Event::SessionPresented,
            _ => Event::Other(clip(uri)),
        }
    } else if let Some(kind) = uri.strip_prefix(RISC) {
        match kind {
            "account-disabled" => Event::AccountDisabled {
                reason: read.logged_word("reason", DisableReason::parse),
            },
            "account-enabled" => Event::AccountEnabled,
            "account-purged" => Event::AccountPurged,
            "credential-compromise" => Event::CredentialCompromise {
                credential_type: read.logged_word("credential_type", CredentialType::parse),
            },
            "identifier-changed" => Event::IdentifierChanged {
                new_value: read.optional_text("new-value")?,
            },
            "identifier-recycled" => Event::IdentifierRecycled,
            "sessions-revoked" => Event::SessionsRevoked,
            "account-credential-change-required" => Event::AccountCredentialChangeRequired,
            _ => Event::Other(clip(uri)),
        }
    } else if let Some(kind) = uri.strip_prefix(SSF) {
        match kind {
            "verification" => Event::Verification {
                state: read.optional_text("state")?,
            },
            "stream-updated" => Event::StreamUpdated {
                status: read.word("status", StreamStatus::parse)?,
                reason: read.optional_text("reason")?,
            },
            _ => Event::Other(clip(uri)),
        }
    } else {
        Event::Other(clip(uri))
    };
    let context = EventContext {
        event_timestamp: read.numeric_date("event_timestamp")?,
        initiating_entity: read.logged_word("initiating_entity", InitiatingEntity::parse),
        reason_admin: read.reason("reason_admin")?,
        reason_user: read.reason("reason_user")?,
    };
    Ok((event, context))
}

impl Event {
    /// A short label for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SessionRevoked => "session-revoked",
            Event::CredentialChange { .. } => "credential-change",
            Event::TokenClaimsChange { .. } => "token-claims-change",
            Event::AssuranceLevelChange { .. } => "assurance-level-change",
            Event::DeviceComplianceChange { .. } => "device-compliance-change",
            Event::SessionEstablished => "session-established",
            Event::SessionPresented => "session-presented",
            Event::AccountDisabled { .. } => "account-disabled",
            Event::AccountEnabled => "account-enabled",
            Event::AccountPurged => "account-purged",
            Event::CredentialCompromise { .. } => "credential-compromise",
            Event::IdentifierChanged { .. } => "identifier-changed",
            Event::IdentifierRecycled => "identifier-recycled",
            Event::SessionsRevoked => "sessions-revoked",
            Event::AccountCredentialChangeRequired => "account-credential-change-required",
            Event::Verification { .. } => "verification",
            Event::StreamUpdated { .. } => "stream-updated",
            Event::Other(_) => "other",
        }
    }

    /// Stream events may come without a subject (or with the stream's);
    /// every other event must say whom it is about.
    pub fn needs_subject(&self) -> bool {
        !matches!(self, Event::Verification { .. } | Event::StreamUpdated { .. })
    }
}

/// Typed reads of one payload's members.
struct Payload<'a>(&'a Map<String, Value>);

impl Payload<'_> {
    fn optional_text(&self, member: &'static str) -> Result<Option<String>, EventError> {
        match self.0.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
            Some(_) => Err(EventError::Malformed(member)),
        }
    }

    fn text(&self, member: &'static str) -> Result<String, EventError> {
        match self.optional_text(member) {
            Ok(Some(text)) => Ok(text),
            _ => Err(EventError::Missing(member)),
        }
    }

    fn optional_word<T>(&self, member: &'static str, parse: fn(&str) -> Option<T>) -> Result<Option<T>, EventError> {
        self.optional_text(member)?
            .map(|text| {
                parse(&text).ok_or_else(|| EventError::UnknownValue {
                    member,
                    value: clip(&text),
                })
            })
            .transpose()
    }

    /// A value only logged: None when missing, malformed or unknown.
    fn logged_word<T>(&self, member: &'static str, parse: fn(&str) -> Option<T>) -> Option<T> {
        self.0.get(member).and_then(Value::as_str).and_then(parse)
    }

    fn word<T>(&self, member: &'static str, parse: fn(&str) -> Option<T>) -> Result<T, EventError> {
        let text = self.text(member)?;
        parse(&text).ok_or_else(|| EventError::UnknownValue {
            member,
            value: clip(&text),
        })
    }

    fn numeric_date(&self, member: &'static str) -> Result<Option<i64>, EventError> {
        numeric_date(self.0.get(member)).map_err(|()| EventError::Malformed(member))
    }

    /// A language-tagged object of texts, or (early drafts) one string.
    fn reason(&self, member: &'static str) -> Result<Option<Reason>, EventError> {
        match self.0.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(Reason(vec![(String::new(), text.clone())]))),
            Some(Value::Object(texts)) => texts
                .iter()
                .map(|(lang, text)| match text {
                    Value::String(text) => Ok((lang.clone(), text.clone())),
                    _ => Err(EventError::Malformed(member)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|texts| Some(Reason(texts))),
            Some(_) => Err(EventError::Malformed(member)),
        }
    }
}

/// An optional NumericDate (seconds, possibly fractional; RFC 7519 §2).
pub(super) fn numeric_date(value: Option<&Value>) -> Result<Option<i64>, ()> {
    match value {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            // Saturating: an absurd float becomes an absurd time, which
            // the time checks then refuse.
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(()),
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
