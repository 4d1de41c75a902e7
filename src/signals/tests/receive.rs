//! Each event's effect on exactly the sessions it names, within the bound
//! provider; replays, out-of-order events and a failing notifier.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::*;
use crate::access::posture::{Assurance, DeviceCompliance, Posture};
use crate::signals::effects::Effect;
use crate::snapshot_member::SnapshotMember;
use crate::store::signals::{iss_sub_value, AccountId, SignalStore};

fn applied(result: Result<Received, Refused>) -> Effect {
    match result {
        Ok(received) => received.effect,
        Err(refused) => panic!("refused: {refused}"),
    }
}

fn sorted(mut keys: Vec<SessionKey>) -> Vec<SessionKey> {
    keys.sort_by_key(SessionKey::to_hex);
    keys
}

#[tokio::test]
async fn session_revoked_by_iss_sub_ends_that_users_sessions_at_the_bound_provider_only() {
    let fx = fixture().await;
    let token = fx.set(&revoked(), json!({}), iss_sub(CORP_ISSUER, "alice"), NOW - 5);
    assert_eq!(
        applied(fx.receive(&token).await),
        Effect::Applied { ended: 2, changed: 0 }
    );
    assert_eq!(fx.alive().await, vec![BOB, OTHER_ALICE]);
    assert_eq!(sorted(fx.notes.revoked()), vec![ALICE_1, ALICE_2]);
}

#[tokio::test]
async fn session_revoked_by_email_ignores_case_and_never_reaches_the_other_providers_user() {
    let fx = fixture().await;
    let subject = json!({"format": "email", "email": "Alice@X.test"});
    let token = fx.set(&revoked(), json!({}), subject, NOW - 5);
    assert_eq!(
        applied(fx.receive(&token).await),
        Effect::Applied { ended: 2, changed: 0 }
    );
    assert_eq!(fx.alive().await, vec![BOB, OTHER_ALICE]);
}

#[tokio::test]
async fn session_revoked_for_a_complex_subject_ends_only_the_named_session() {
    let fx = fixture().await;
    // `other`'s Alice has the same sid: it is another IdP's session.
    let subject = json!({
        "user": iss_sub(CORP_ISSUER, "alice"),
        "session": {"format": "opaque", "id": "sid-a1"},
    });
    let token = fx.set(&revoked(), json!({}), subject, NOW - 5);
    assert_eq!(
        applied(fx.receive(&token).await),
        Effect::Applied { ended: 1, changed: 0 }
    );
    assert_eq!(fx.alive().await, vec![ALICE_2, BOB, OTHER_ALICE]);
    assert_eq!(fx.notes.revoked(), vec![ALICE_1]);
}

#[tokio::test]
async fn a_login_made_after_the_revocation_is_not_ended_by_it() {
    let fx = fixture().await;
    // Bob logged in again 10 s after the admin revoked his sessions (the
    // SET arrived late): only the older session ends.
    let mut fresh = session(SessionKey([9; 32]), "corp", CORP_ISSUER, "bob", "bob@x.test", "sid-b2");
    fresh.created_at = NOW - 100;
    fx.store.insert(&fresh).await.expect("insert");
    let token = fx.set(&revoked(), json!({}), iss_sub(CORP_ISSUER, "bob"), NOW - 110 - 60);
    assert_eq!(
        applied(fx.receive(&token).await),
        Effect::Applied { ended: 1, changed: 0 }
    );
    assert_eq!(fx.notes.revoked(), vec![BOB]);
    assert!(fx.store.get(&fresh.key).await.expect("get").is_some());
}

#[tokio::test]
async fn a_replayed_jti_is_refused_and_changes_nothing() {
    let fx = fixture().await;
    let bob = fx.set_with_jti("once", &revoked(), json!({}), iss_sub(CORP_ISSUER, "bob"), NOW - 5);
    applied(fx.receive(&bob).await);
    assert_eq!(fx.notes.revoked(), vec![BOB]);

    let again = fx.receive(&bob).await;
    assert!(
        matches!(&again, Err(Refused::Replayed(jti)) if jti == "once"),
        "{again:?}"
    );
    // The same jti on another event (a forged or confused retry) is the
    // same SET: Alice keeps her sessions.
    let alice = fx.set_with_jti("once", &revoked(), json!({}), iss_sub(CORP_ISSUER, "alice"), NOW - 5);
    let refused = fx.receive(&alice).await.expect_err("a replay");
    assert!(matches!(refused, Refused::Replayed(_)), "{refused:?}");
    assert_eq!(refused.code(), "invalid_request");
    assert!(!refused.is_transient(), "the transmitter must not retry it");
    assert_eq!(fx.alive().await, vec![ALICE_1, ALICE_2, OTHER_ALICE]);
    assert!(fx.notes.revoked().is_empty());
}

#[tokio::test]
async fn an_older_account_enabled_never_undoes_a_newer_account_disabled() {
    let fx = fixture().await;
    let alice = || iss_sub(CORP_ISSUER, "alice");
    // As a login of corp's alice looks it up.
    let at_corp = iss_sub_value(CORP_ISSUER, "alice");
    let corp_alice = [AccountId {
        provider: "corp",
        kind: "iss_sub",
        value: &at_corp,
    }];
    let other_alice = [AccountId {
        provider: "other",
        kind: "iss_sub",
        value: &at_corp,
    }];

    let disabled = fx.set(
        &risc("account-disabled"),
        json!({"reason": "hijacking"}),
        alice(),
        NOW - 100,
    );
    assert_eq!(
        applied(fx.receive(&disabled).await),
        Effect::Applied { ended: 2, changed: 0 }
    );
    let state = fx.store.disabled_account(&corp_alice).await.expect("read");
    assert_eq!(state.map(|s| (s.disabled, s.changed_at)), Some((true, NOW - 100)));
    assert_eq!(fx.store.disabled_account(&other_alice).await.expect("read"), None);

    let older = fx.set(&risc("account-enabled"), json!({}), alice(), NOW - 200);
    assert!(matches!(applied(fx.receive(&older).await), Effect::Ignored(_)));
    assert!(fx.store.disabled_account(&corp_alice).await.expect("read").is_some());

    let newer = fx.set(&risc("account-enabled"), json!({}), alice(), NOW - 50);
    assert_eq!(
        applied(fx.receive(&newer).await),
        Effect::Applied { ended: 0, changed: 0 }
    );
    assert_eq!(fx.store.disabled_account(&corp_alice).await.expect("read"), None);
    assert_eq!(fx.alive().await, vec![BOB, OTHER_ALICE]);
}

#[tokio::test]
async fn token_claims_change_rewrites_the_snapshot_and_an_older_one_is_ignored() {
    let fx = fixture().await;
    let change = |department: &str, at: i64| {
        fx.set(
            &caep("token-claims-change"),
            json!({"claims": {"department": department}}),
            iss_sub(CORP_ISSUER, "alice"),
            at,
        )
    };
    let department = |snapshot: String| {
        serde_json::from_str::<Value>(&snapshot).ok().and_then(|v| {
            v.pointer("/merged/department")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    };

    assert_eq!(
        applied(fx.receive(&change("engineering", NOW - 20)).await),
        Effect::Applied { ended: 0, changed: 2 }
    );
    assert_eq!(sorted(fx.notes.changed()), vec![ALICE_1, ALICE_2]);
    for key in [ALICE_1, ALICE_2] {
        let snapshot = fx.snapshot(&key).await;
        assert_eq!(department(snapshot.clone()).as_deref(), Some("engineering"));
        assert_eq!(Posture::of_snapshot(&snapshot).claims_changed_at, Some(NOW - 20));
    }
    for key in [BOB, OTHER_ALICE] {
        assert_eq!(department(fx.snapshot(&key).await).as_deref(), Some("sales"));
    }

    // Sent before the one above, delivered after it.
    assert_eq!(
        applied(fx.receive(&change("finance", NOW - 40)).await),
        Effect::Applied { ended: 0, changed: 0 }
    );
    assert!(fx.notes.changed().is_empty());
    assert_eq!(department(fx.snapshot(&ALICE_1).await).as_deref(), Some("engineering"));
}

#[tokio::test]
async fn assurance_and_device_changes_land_in_the_sessions_posture() {
    let fx = fixture().await;
    let assurance = fx.set(
        &caep("assurance-level-change"),
        json!({"namespace": "NIST-AAL", "current_level": "nist-aal1", "previous_level": "nist-aal2"}),
        iss_sub(CORP_ISSUER, "alice"),
        NOW - 30,
    );
    let device = fx.set(
        &caep("device-compliance-change"),
        json!({"current_status": "not-compliant", "previous_status": "compliant"}),
        json!({"user": iss_sub(CORP_ISSUER, "alice"), "session": {"format": "opaque", "id": "sid-a2"}}),
        NOW - 10,
    );
    applied(fx.receive(&assurance).await);
    assert_eq!(
        applied(fx.receive(&device).await),
        Effect::Applied { ended: 0, changed: 1 }
    );

    let expected_assurance = Some(Assurance {
        namespace: "NIST-AAL".into(),
        level: "nist-aal1".into(),
        at: NOW - 30,
    });
    let one = Posture::of_snapshot(&fx.snapshot(&ALICE_1).await);
    assert_eq!(one.assurance, expected_assurance);
    assert_eq!(one.device, None, "the device event named the other session");
    let two = Posture::of_snapshot(&fx.snapshot(&ALICE_2).await);
    assert_eq!(two.assurance, expected_assurance);
    assert_eq!(
        two.device,
        Some(DeviceCompliance {
            compliant: false,
            at: NOW - 10
        })
    );
    assert_eq!(
        Posture::of_snapshot(&fx.snapshot(&OTHER_ALICE).await),
        Posture::default()
    );
    assert_eq!(Posture::of_snapshot(&fx.snapshot(&BOB).await), Posture::default());
}

#[tokio::test]
async fn a_subject_at_another_providers_issuer_changes_no_session() {
    let fx = fixture().await;
    let other = || iss_sub(OTHER_ISSUER, "alice");
    let revoke = fx.set(&revoked(), json!({}), other(), NOW - 5);
    assert_eq!(
        applied(fx.receive(&revoke).await),
        Effect::Applied { ended: 0, changed: 0 }
    );
    let claims = fx.set(
        &caep("token-claims-change"),
        json!({"claims": {"department": "hr"}}),
        other(),
        NOW - 5,
    );
    assert_eq!(
        applied(fx.receive(&claims).await),
        Effect::Applied { ended: 0, changed: 0 }
    );
    assert_eq!(fx.alive().await, ALL.to_vec());
    assert!(fx.notes.revoked().is_empty() && fx.notes.changed().is_empty());
    for key in ALL {
        assert!(fx.snapshot(&key).await.contains("\"sales\""));
    }
}

#[tokio::test]
async fn a_failing_notifier_fails_the_receive_and_the_retry_is_taken() {
    let fx = fixture().await;
    let token = fx.set(&revoked(), json!({}), iss_sub(CORP_ISSUER, "bob"), NOW - 5);
    fx.notes.failing.store(true, Ordering::SeqCst);
    let refused = fx.receive(&token).await.expect_err("the notifier failed");
    assert!(matches!(refused, Refused::Effect(_)), "{refused:?}");
    assert_eq!(refused.code(), "temporarily_unavailable");
    assert!(refused.is_transient());

    // The jti was taken back: the transmitter's retry is not a replay.
    fx.notes.failing.store(false, Ordering::SeqCst);
    assert!(fx.receive(&token).await.is_ok());
    assert!(!fx.alive().await.contains(&BOB));
}

/// An `iss_sub` account event names its issuer too: another issuer's
/// `alice` closes no account of `corp`'s `alice`, while one at corp's own
/// issuer does (as logins look it up: issuer and subject).
#[tokio::test]
async fn an_account_event_at_another_providers_issuer_disables_no_account() {
    let fx = fixture().await;
    let token = fx.set(
        &risc("account-disabled"),
        json!({}),
        iss_sub(OTHER_ISSUER, "alice"),
        NOW - 5,
    );
    let effect = applied(fx.receive(&token).await);
    let corp_issuer = CORP_ISSUER.to_string();
    let as_login_sees = iss_sub_value(&corp_issuer, "alice");
    let corp_alice = [
        AccountId {
            provider: "corp",
            kind: "iss_sub",
            value: &as_login_sees,
        },
        AccountId {
            provider: "corp",
            kind: "sub",
            value: "alice",
        },
    ];
    assert_eq!(
        fx.store.disabled_account(&corp_alice).await.expect("read"),
        None,
        "{effect:?}"
    );
    let token = fx.set(
        &risc("account-disabled"),
        json!({}),
        iss_sub(&corp_issuer, "alice"),
        NOW - 4,
    );
    applied(fx.receive(&token).await);
    assert!(fx.store.disabled_account(&corp_alice).await.expect("read").is_some());
    assert!(
        fx.notes.accounts.load(Ordering::SeqCst) >= 1,
        "bearer verdicts are told"
    );
}
