//! Every event type with its payload, the common CAEP members, and each
//! way a payload is refused.

use serde_json::json;

use super::*;

fn caep(kind: &str) -> String {
    format!("{CAEP}{kind}")
}

fn risc(kind: &str) -> String {
    format!("{RISC}{kind}")
}

fn ssf(kind: &str) -> String {
    format!("{SSF}{kind}")
}

fn event(uri: &str, payload: Value) -> Result<Event, EventError> {
    parse(uri, &payload).map(|(event, _)| event)
}

#[test]
fn every_event_type_parses_with_its_payload() {
    let claims = json!({"groups": ["a"], "role": "x"});
    let cases = [
        (
            caep("session-revoked"),
            json!({}),
            Event::SessionRevoked,
            "session-revoked",
        ),
        (
            caep("credential-change"),
            json!({"credential_type": "fido2-roaming", "change_type": "revoke"}),
            Event::CredentialChange {
                credential_type: Some(CredentialType::Fido2Roaming),
                change_type: Some(ChangeType::Revoke),
            },
            "credential-change",
        ),
        (
            caep("token-claims-change"),
            json!({"claims": claims}),
            Event::TokenClaimsChange {
                claims: claims.as_object().cloned().unwrap_or_default(),
            },
            "token-claims-change",
        ),
        (
            caep("assurance-level-change"),
            json!({"namespace": "NIST-AAL", "current_level": "nist-aal2", "previous_level": "nist-aal1",
                   "change_direction": "increase"}),
            Event::AssuranceLevelChange {
                namespace: AssuranceNamespace("NIST-AAL".into()),
                current_level: AssuranceLevel("nist-aal2".into()),
                previous_level: Some(AssuranceLevel("nist-aal1".into())),
                change_direction: Some(ChangeDirection::Increase),
            },
            "assurance-level-change",
        ),
        (
            caep("device-compliance-change"),
            json!({"current_status": "not-compliant", "previous_status": "compliant"}),
            Event::DeviceComplianceChange {
                current_status: Compliance::NotCompliant,
                previous_status: Some(Compliance::Compliant),
            },
            "device-compliance-change",
        ),
        (
            caep("session-established"),
            json!({"acr": "x"}),
            Event::SessionEstablished,
            "session-established",
        ),
        (
            caep("session-presented"),
            json!({}),
            Event::SessionPresented,
            "session-presented",
        ),
        (
            risc("account-disabled"),
            json!({"reason": "hijacking"}),
            Event::AccountDisabled {
                reason: Some(DisableReason::Hijacking),
            },
            "account-disabled",
        ),
        (
            risc("account-enabled"),
            json!({}),
            Event::AccountEnabled,
            "account-enabled",
        ),
        (
            risc("account-purged"),
            json!({}),
            Event::AccountPurged,
            "account-purged",
        ),
        (
            risc("credential-compromise"),
            json!({"credential_type": "password"}),
            Event::CredentialCompromise {
                credential_type: Some(CredentialType::Password),
            },
            "credential-compromise",
        ),
        (
            risc("identifier-changed"),
            json!({"new-value": "new@x.test"}),
            Event::IdentifierChanged {
                new_value: Some("new@x.test".into()),
            },
            "identifier-changed",
        ),
        (
            risc("identifier-recycled"),
            json!({}),
            Event::IdentifierRecycled,
            "identifier-recycled",
        ),
        (
            risc("sessions-revoked"),
            json!({}),
            Event::SessionsRevoked,
            "sessions-revoked",
        ),
        (
            risc("account-credential-change-required"),
            json!({}),
            Event::AccountCredentialChangeRequired,
            "account-credential-change-required",
        ),
        (
            ssf("verification"),
            json!({"state": "VGhpcyBpcyBh"}),
            Event::Verification {
                state: Some("VGhpcyBpcyBh".into()),
            },
            "verification",
        ),
        (
            ssf("verification"),
            json!({}),
            Event::Verification { state: None },
            "verification",
        ),
        (
            ssf("stream-updated"),
            json!({"status": "paused", "reason": "maintenance"}),
            Event::StreamUpdated {
                status: StreamStatus::Paused,
                reason: Some("maintenance".into()),
            },
            "stream-updated",
        ),
        (risc("opt-in"), json!({}), Event::Other(risc("opt-in")), "other"),
        (
            "https://example.test/event".to_string(),
            json!({}),
            Event::Other("https://example.test/event".into()),
            "other",
        ),
    ];
    for (uri, payload, expected, name) in cases {
        let parsed = event(&uri, payload).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(parsed, expected, "{uri}");
        assert_eq!(parsed.name(), name, "{uri}");
    }
}

#[test]
fn only_stream_events_may_come_without_a_subject() {
    assert!(!Event::Verification { state: None }.needs_subject());
    assert!(!Event::StreamUpdated {
        status: StreamStatus::Enabled,
        reason: None
    }
    .needs_subject());
    assert!(Event::SessionRevoked.needs_subject());
    assert!(Event::Other("x".into()).needs_subject());
}

#[test]
fn the_common_members_are_kept() {
    let (_, context) = parse(
        &caep("session-revoked"),
        &json!({
            "event_timestamp": 1_615_304_991.643,
            "initiating_entity": "policy",
            "reason_admin": {"en": "Landspeed Policy Violation", "es": "Violación"},
            "reason_user": "Access attempt from multiple regions.",
        }),
    )
    .expect("valid");
    assert_eq!(context.event_timestamp, Some(1_615_304_991));
    assert_eq!(context.initiating_entity, Some(InitiatingEntity::Policy));
    assert_eq!(
        context.reason_admin.as_ref().and_then(Reason::text),
        Some("Landspeed Policy Violation")
    );
    assert_eq!(
        context.reason_user.as_ref().and_then(Reason::text),
        Some("Access attempt from multiple regions.")
    );
    let (_, empty) = parse(&caep("session-revoked"), &json!({})).expect("valid");
    assert_eq!(empty, EventContext::default());
}

#[test]
fn malformed_payloads_are_refused_with_their_reason() {
    let cases = [
        (caep("session-revoked"), json!([]), EventError::NotAnObject),
        (
            caep("token-claims-change"),
            json!({"claims": "x"}),
            EventError::Missing("claims"),
        ),
        (
            caep("assurance-level-change"),
            json!({"namespace": "NIST-AAL"}),
            EventError::Missing("current_level"),
        ),
        (
            caep("device-compliance-change"),
            json!({"current_status": "compliantish"}),
            EventError::UnknownValue {
                member: "current_status",
                value: "compliantish".into(),
            },
        ),
        (
            ssf("stream-updated"),
            json!({"reason": "x"}),
            EventError::Missing("status"),
        ),
        (
            caep("session-revoked"),
            json!({"event_timestamp": "yesterday"}),
            EventError::Malformed("event_timestamp"),
        ),
        (
            caep("session-revoked"),
            json!({"reason_admin": {"en": 1}}),
            EventError::Malformed("reason_admin"),
        ),
    ];
    for (uri, payload, expected) in cases {
        assert_eq!(parse(&uri, &payload).err(), Some(expected), "{uri} {payload}");
    }
}

#[test]
fn words_round_trip() {
    for status in [StreamStatus::Enabled, StreamStatus::Paused, StreamStatus::Disabled] {
        assert_eq!(StreamStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(
        Compliance::parse("Compliant"),
        None,
        "protocol words are case-sensitive"
    );
}

#[test]
fn values_only_logged_never_cost_an_event_its_effect() {
    let (event, context) = parse(
        &caep("credential-change"),
        &json!({"credential_type": "vendor-token", "initiating_entity": "robot"}),
    )
    .expect("a vendor's credential type still ends sessions");
    assert_eq!(
        event,
        Event::CredentialChange {
            credential_type: None,
            change_type: None,
        }
    );
    assert_eq!(context.initiating_entity, None);
    let (event, _) = parse(&risc("credential-compromise"), &json!({})).expect("no credential type");
    assert_eq!(event, Event::CredentialCompromise { credential_type: None });
    let (event, _) = parse(&risc("account-disabled"), &json!({"reason": 3})).expect("odd reason");
    assert_eq!(event, Event::AccountDisabled { reason: None });
    let (event, _) = parse(
        &caep("assurance-level-change"),
        &json!({"namespace": "NIST-AAL", "current_level": "x", "change_direction": "sideways"}),
    )
    .expect("odd direction");
    assert!(matches!(
        event,
        Event::AssuranceLevelChange {
            change_direction: None,
            ..
        }
    ));
}
