//! The shared-signals stream from doorward's side (issue 21): poll delivery
//! (events take effect within the poll interval and are acknowledged; a
//! bad SET is reported in `setErrs` with its code), a push stream doorward
//! creates and verifies itself (readiness and metrics follow it), a
//! reload that removes the `[[signals]]` block closes the push endpoint,
//! and with `[admin] listen` pushes are taken there and nowhere else.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::idp::{raw_request, Browser};
use crate::scenario::{Options, Scenario};
use crate::signals::{metric, ready};
use crate::ssf_peer::{caep, email, risc, Transmitter, AUDIENCE, MGMT_TOKEN, PUSH_TOKEN};

/// A `[[signals]]` block for `ssf` named `name`, with `extra` lines.
fn block(ssf: &Transmitter, name: &str, extra: &str) -> String {
    format!(
        "[[signals]]\nname = \"{name}\"\nissuer = \"{}\"\nprovider = \"test-idp\"\naudience = \"{AUDIENCE}\"\n{extra}\n",
        ssf.issuer
    )
}

/// The status of `browser`'s next API request to `path` on `s`.
async fn next(s: &Scenario, browser: &Browser, path: &str) -> u16 {
    let cookie = format!("doorward={}", browser.cookie("doorward").expect("cookie").value);
    let url = url::Url::parse(&s.url(path)).expect("url");
    raw_request(
        "GET",
        &url,
        &[("cookie", &cookie), ("accept", "application/json")],
        Bytes::new(),
    )
    .await
    .status
}

/// Polls the transmitter's state until `found` picks something out of it.
async fn state_until<T>(ssf: &Transmitter, what: &str, found: impl Fn(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = ssf.state().await;
        if let Some(value) = found(&state) {
            return value;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn polled_events_take_effect_within_the_interval_and_are_acknowledged_or_reported() {
    let _alone = crate::signals_attacks::REFUSALS.lock().await;
    let ssf = Transmitter::start();
    let extra = block(
        &ssf,
        "poller",
        &format!(
            "delivery = \"poll\"\nmanage_stream = true\ntransmitter_token = \"{MGMT_TOKEN}\"\npoll_interval = \"1s\""
        ),
    );
    let s = Scenario::start(Options {
        extra,
        ..Options::default()
    })
    .await;
    // doorward creates its poll stream and answers the verification.
    let stream = state_until(&ssf, "doorward's poll stream", |state| {
        state["streams"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(stream["delivery"]["method"], "urn:ietf:rfc:8936", "{stream}");
    ready(&s.base, &["signals poller: metadata loaded, stream enabled, verified"]).await;
    let alice = s.logged_in("alice", "/").await;
    let bob = s.logged_in("bob", "/").await;

    let queued = ssf
        .emit(json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("alice@example.com")}))
        .await;
    assert_eq!(queued["status"], "queued", "{queued}");
    let emitted = Instant::now();
    while next(&s, &alice, "/after").await != 401 {
        assert!(
            emitted.elapsed() < Duration::from_millis(1500),
            "not taken within the poll interval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("poll: taken {:?} after it was queued", emitted.elapsed());
    assert_eq!(next(&s, &bob, "/after").await, 200, "bob untouched");
    let jti = queued["jti"].clone();
    state_until(&ssf, "the acknowledgement", |state| {
        state["acks"].as_array()?.iter().find(|a| a["jti"] == jti).cloned()
    })
    .await;

    // A SET from another issuer: reported with its code, not acknowledged.
    let bad = ssf
        .emit(
            json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("bob@example.com"),
                     "iss": "https://impostor.example"}),
        )
        .await;
    let jti = bad["jti"].clone();
    let reported = state_until(&ssf, "the setErr", |state| {
        state["set_errs"].as_array()?.iter().find(|e| e["jti"] == jti).cloned()
    })
    .await;
    assert_eq!(reported["error"]["err"], "invalid_issuer", "{reported}");
    let state = ssf.state().await;
    assert!(!state["acks"].as_array().expect("acks").iter().any(|a| a["jti"] == jti));
    assert_eq!(next(&s, &bob, "/after").await, 200, "the bad SET had no effect");
}

#[tokio::test]
async fn doorward_creates_and_verifies_its_push_stream_and_reports_it_in_readiness_and_metrics() {
    let ssf = Transmitter::start();
    let extra = block(
        &ssf,
        "managed",
        &format!("push_token = \"{PUSH_TOKEN}\"\nmanage_stream = true\ntransmitter_token = \"{MGMT_TOKEN}\""),
    );
    let s = Scenario::start(Options {
        extra,
        ..Options::default()
    })
    .await;
    ready(&s.base, &["signals managed: metadata loaded, stream enabled, verified"]).await;

    let state = ssf.state().await;
    let streams = state["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "one stream: {state}");
    let stream = &streams[0];
    assert_eq!(stream["delivery"]["method"], "urn:ietf:rfc:8935");
    assert_eq!(
        stream["delivery"]["endpoint_url"],
        s.url("/_doorward/ssf/managed"),
        "the push URL doorward gave"
    );
    assert_eq!(
        stream["delivery"]["authorization_header"],
        format!("Bearer {PUSH_TOKEN}")
    );
    let requested = stream["events_requested"].as_array().expect("events_requested");
    for event in ["caep/event-type/session-revoked", "risc/event-type/account-disabled"] {
        assert!(
            requested.iter().any(|e| e.as_str().is_some_and(|e| e.ends_with(event))),
            "{event} requested: {requested:?}"
        );
    }
    let management = state["management"].as_array().expect("management");
    assert!(!management.is_empty() && management.iter().all(|call| call["authorized"] == true));
    let verification = &state["verifications"][0];
    assert_eq!(verification["answered"], 202, "{verification}");
    assert_eq!(
        metric(&s.base, "doorward_signals_stream_enabled{transmitter=\"managed\"}").await,
        Some(1.0)
    );

    // An event over the managed stream moves the event counter.
    let alice = s.logged_in("alice", "/").await;
    let applied =
        "doorward_signals_events_total{transmitter=\"managed\",event=\"session-revoked\",outcome=\"applied\"}";
    assert_eq!(metric(&s.base, applied).await, None);
    let answer = ssf
        .emit(json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("alice@example.com")}))
        .await;
    assert_eq!(answer["status"], 202, "{answer}");
    assert_eq!(next(&s, &alice, "/after").await, 401);
    assert_eq!(metric(&s.base, applied).await, Some(1.0));

    // The transmitter disables the stream: its stream-updated is heard.
    ssf.control("POST", "/_test/status", Some(json!({"status": "disabled"})))
        .await;
    ready(&s.base, &["signals managed: metadata loaded, stream disabled"]).await;
    assert_eq!(
        metric(&s.base, "doorward_signals_stream_enabled{transmitter=\"managed\"}").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn a_reload_without_the_signals_block_closes_the_push_endpoint() {
    let ssf = Transmitter::start();
    let block_text = block(&ssf, "gone", &format!("push_token = \"{PUSH_TOKEN}\""));
    let s = Scenario::start(Options {
        extra: block_text.clone(),
        ..Options::default()
    })
    .await;
    ready(&s.base, &["signals gone: metadata loaded"]).await;
    ssf.push_stream(&s.url("/_doorward/ssf/gone")).await;
    let before = ssf
        .emit(json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("nobody@example.com")}))
        .await;
    assert_eq!(before["status"], 202, "{before}");

    let file = crate::support::write_config(&s.config);
    let config = doorward::config::parse_str(&s.config, "test.toml").expect("config");
    let reloader = doorward::reload::Reloader::new(file.path().to_path_buf(), config, s._proxy.gateway.clone());
    let without = s.config.replace(&block_text, "");
    assert_ne!(without, s.config);
    std::fs::write(file.path(), &without).expect("rewrite config");
    assert_eq!(reloader.reload("test").await, doorward::reload::Outcome::Reloaded);

    let after = ssf
        .emit(json!({"event": caep("session-revoked"), "payload": {}, "sub_id": email("nobody@example.com")}))
        .await;
    assert_eq!(after["status"], 404, "{after}");
    assert!(!Browser::default()
        .get(&s.url("/_doorward/readyz"))
        .await
        .body
        .contains("signals gone"));
}

#[tokio::test]
async fn with_an_admin_listener_pushes_land_there_only_and_account_closing_events_end_sessions() {
    const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef0123456789";
    let ssf = Transmitter::start();
    let extra = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n{}",
        block(&ssf, "inside", &format!("push_token = \"{PUSH_TOKEN}\""))
    );
    let s = Scenario::start(Options {
        extra,
        ..Options::default()
    })
    .await;
    ready(&s.base, &["signals inside: metadata loaded"]).await;
    let admin = s._proxy.admin_addr.expect("an admin listener");
    ssf.push_stream(&format!("http://{admin}/ssf/inside")).await;
    let alice = s.logged_in("alice", "/").await;
    let bob = s.logged_in("bob", "/").await;

    // The public listener does not take pushes when the admin one does.
    let public = ssf
        .emit(json!({
            "event": risc("credential-compromise"),
            "payload": {"credential_type": "password"},
            "sub_id": email("alice@example.com"),
            "endpoint_url": s.url("/_doorward/ssf/inside"),
        }))
        .await;
    assert_eq!(public["status"], 404, "{public}");
    assert_eq!(next(&s, &alice, "/still").await, 200, "a push refused changes nothing");

    // credential-compromise and account-purged end the user's sessions.
    ssf.accepted(
        &risc("credential-compromise"),
        json!({"credential_type": "password"}),
        email("alice@example.com"),
    )
    .await;
    assert_eq!(next(&s, &alice, "/after").await, 401);
    assert_eq!(next(&s, &bob, "/after").await, 200, "another user keeps his session");
    ssf.accepted(&risc("account-purged"), json!({}), email("bob@example.com"))
        .await;
    assert_eq!(next(&s, &bob, "/after").await, 401);
    for event in ["credential-compromise", "account-purged"] {
        let series =
            format!("doorward_signals_events_total{{transmitter=\"inside\",event=\"{event}\",outcome=\"applied\"}}");
        assert_eq!(metric(&s.base, &series).await, Some(1.0), "{series}");
    }
}
