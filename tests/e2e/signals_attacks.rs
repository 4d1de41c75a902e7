//! Pushed SETs doorward must refuse (issue 21), each at its RFC 8935 error
//! code and with no effect on the user it names (their next request on the
//! other replica still passes), the reason in the log and the token not;
//! and a key rotation at the transmitter, whose new key is fetched once.

use serde_json::{json, Value};

use crate::signals::{metric, Rig, NAME};
use crate::ssf_peer::{caep, email, PUSH_TOKEN};
use crate::support::LogCapture;

/// How many requests doorward made to a provider's endpoint (the latency
/// histogram's count; the transmitter's JWKS is endpoint `ssf_jwks`).
const JWKS_FETCHES: &str = "doorward_idp_request_duration_seconds_count";

/// Held by the tests whose SETs doorward refuses. The refusal's log line is
/// captured per thread (`LogCapture`), and tracing decides once per call
/// site, for every thread, whether anyone listens: when another test's
/// thread reaches that line while the capture runs, the capture was seen
/// to miss it.
pub static REFUSALS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A session-revoked about alice with these overrides: the push's answer.
async fn attack(rig: &Rig, overrides: Value) -> Value {
    let mut request = json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("alice@example.com")});
    for (key, value) in overrides.as_object().expect("overrides") {
        request[key] = value.clone();
    }
    rig.ssf.emit(request).await
}

#[tokio::test]
async fn each_bad_push_is_refused_at_its_code_and_changes_nothing() {
    let _alone = REFUSALS.lock().await;
    let log = LogCapture::start("doorward=info");
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    assert_eq!(rig.on_b(&alice, "/warm", true).await, 200);
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        - 2 * 24 * 3600;
    let wrong_token = "Bearer not-the-push-token-0123456789abcdef0123";
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("bad signature", json!({"sign_with": "wrong"}), 400, "invalid_key"),
        ("unknown key", json!({"sign_with": "unknown"}), 400, "invalid_key"),
        (
            "wrong iss",
            json!({"iss": "https://impostor.example"}),
            400,
            "invalid_issuer",
        ),
        (
            "wrong aud",
            json!({"aud": "https://another-app.example"}),
            400,
            "invalid_audience",
        ),
        ("wrong typ", json!({"typ": "JWT"}), 400, "invalid_request"),
        ("no typ", json!({"typ": null}), 400, "invalid_request"),
        ("stale iat", json!({"iat": two_days_ago}), 400, "invalid_request"),
        (
            "iat an hour ahead",
            json!({"iat": two_days_ago + 2 * 24 * 3600 + 3600}),
            400,
            "invalid_request",
        ),
        ("HS256 with the public key", json!({"alg": "HS256"}), 400, "invalid_key"),
        ("alg none", json!({"alg": "none"}), 400, "invalid_key"),
        (
            "no Authorization",
            json!({"authorization": null}),
            400,
            "authentication_failed",
        ),
        (
            "wrong token",
            json!({"authorization": wrong_token}),
            400,
            "authentication_failed",
        ),
        (
            "over 64 KiB",
            json!({"raw_body": "a".repeat(70 * 1024)}),
            413,
            "invalid_request",
        ),
        (
            "two events",
            json!({"events": {
                caep("session-revoked"): {},
                caep("credential-change"): {"credential_type": "password", "change_type": "update"},
            }}),
            400,
            "invalid_request",
        ),
    ];
    let mut tokens = Vec::new();
    for (what, overrides, status, err) in cases {
        let answer = attack(&rig, overrides).await;
        assert_eq!(answer["status"], status, "{what}: {answer}");
        assert_eq!(answer["body"]["err"], err, "{what}: {answer}");
        assert_eq!(rig.on_b(&alice, "/after", true).await, 200, "{what} had an effect");
        if let Some(token) = answer["token"].as_str() {
            tokens.push(token.to_string());
        }
    }

    // The store's notices reach B in order: once an honest event about bob
    // shows there, any effect of the refused ones would have shown too.
    let bob = rig.login("test-idp", "bob").await;
    rig.ssf
        .accepted(&caep("session-revoked"), json!({}), email("bob@example.com"))
        .await;
    rig.within(&bob, "/after", true, 401, "the honest SET about bob").await;
    assert_eq!(
        rig.on_b(&alice, "/after", true).await,
        200,
        "no refused SET had an effect"
    );

    // A replay: the same SET again (byte for byte), and a new one reusing
    // its jti. An accepted revocation ends alice's session; after a new
    // login (inside the event's reach), neither replay ends that one.
    let first = rig
        .ssf
        .accepted(&caep("session-revoked"), json!({}), email("alice@example.com"))
        .await;
    rig.within(&alice, "/after", true, 401, "the honest SET is taken").await;
    let again = rig.login("test-idp", "alice").await;
    let token = first["token"].as_str().expect("token").to_string();
    let replayed = attack(&rig, json!({"raw_body": token})).await;
    assert_eq!(replayed["status"], 400, "{replayed}");
    assert_eq!(replayed["body"]["err"], "invalid_request", "{replayed}");
    let same_jti = attack(&rig, json!({"jti": first["jti"]})).await;
    assert_eq!(same_jti["status"], 400, "{same_jti}");
    assert_eq!(same_jti["body"]["err"], "invalid_request", "{same_jti}");
    let bob = rig.login("test-idp", "bob").await;
    rig.ssf
        .accepted(&caep("session-revoked"), json!({}), email("bob@example.com"))
        .await;
    rig.within(&bob, "/after", true, 401, "the honest SET about bob").await;
    assert_eq!(rig.on_b(&again, "/after", true).await, 200, "no replay took effect");
    tokens.push(token);

    let text = log.text();
    for reason in [
        "invalid_key",
        "invalid_issuer",
        "invalid_audience",
        "replayed jti",
        "no or wrong credential",
    ] {
        assert!(text.contains(reason), "the log names `{reason}`:\n{text}");
    }
    for token in &tokens {
        // Any of a token's three parts would be a leak.
        for part in token.split('.').filter(|p| p.len() > 16) {
            assert!(!text.contains(part), "a SET is in the log");
        }
    }
    for secret in [PUSH_TOKEN, wrong_token.trim_start_matches("Bearer ")] {
        assert!(!text.contains(secret), "a push credential is in the log");
    }
}

#[tokio::test]
async fn after_a_key_rotation_an_event_signed_by_the_new_key_is_taken() {
    let _alone = REFUSALS.lock().await;
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    let bob = rig.login("test-idp", "bob").await;
    let old = rig.ssf.control("GET", "/_test/health", None).await["kids"]["RS256"].clone();
    let rotated = rig
        .ssf
        .control("POST", "/_test/rotate", Some(json!({"retire_old": true})))
        .await;
    assert_ne!(rotated["kid"], old, "a new key signs");

    // doorward has only the old key: the new kid refetches the JWKS, once.
    let series = format!("{JWKS_FETCHES}{{provider=\"{NAME}\",endpoint=\"ssf_jwks\"}}");
    let fetches = || metric(&rig.base, &series);
    let before = fetches().await.expect("the JWKS was fetched at start");
    rig.ssf
        .accepted(&caep("session-revoked"), json!({}), email("alice@example.com"))
        .await;
    rig.within(&alice, "/after", true, 401, "the event took effect").await;
    rig.ssf
        .accepted(&caep("session-revoked"), json!({}), email("nobody@example.com"))
        .await;
    assert_eq!(fetches().await, Some(before + 1.0), "one refetch for the new key");
    // Made-up kids cost at most one more fetch however many arrive.
    for _ in 0..3 {
        let made_up = attack(
            &rig,
            json!({"sign_with": "unknown", "sub_id": email("bob@example.com")}),
        )
        .await;
        assert_eq!(made_up["body"]["err"], "invalid_key", "{made_up}");
    }
    assert!(
        fetches().await <= Some(before + 2.0),
        "a flood of unknown kids is one fetch"
    );
    assert_eq!(rig.on_b(&bob, "/after", true).await, 200, "bob untouched");
}
