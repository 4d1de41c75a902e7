//! A session found expired (its lifetime over, or idle too long) is ended
//! at the request that finds it, and the audit trail says so, naming it by
//! the same hash as its login event.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::epoch_tests::{login, manager_on};
use crate::audit::testing::captured_events;
use crate::clock::Clock;

async fn expires_after(advance: i64, reason: &str) {
    let clock = Clock::manual(1_000);
    let sessions = manager_on(Arc::new(AtomicBool::new(false)), clock.clone()).await;
    let (_, live) = sessions.create(login(), None).await.expect("create");
    let (events, _guard) = captured_events();

    clock.advance(advance);
    assert!(sessions.get(&live.key).await.expect("store").is_none(), "expired");
    assert!(sessions.get(&live.key).await.expect("store").is_none(), "and gone");

    let events = events.lines();
    assert_eq!(events.len(), 1, "one event, at the request that found it: {events:?}");
    let event = &events[0];
    assert_eq!(event["event"]["action"], "session-ended");
    assert_eq!(event["doorward"]["by"], "expiry");
    assert_eq!(event["doorward"]["provider"], "idp");
    assert_eq!(
        event["doorward"]["session"],
        crate::audit::session_ref(&live.key.0).as_str()
    );
    assert_eq!(event["event"]["reason"], reason);
}

#[tokio::test]
async fn a_session_past_its_lifetime_ends_with_an_audit_event() {
    // Touched within the idle timeout all along would not matter: the
    // lifetime (3,600 s) is absolute.
    expires_after(3_600, "the session's lifetime ended").await;
}

#[tokio::test]
async fn an_idle_session_ends_with_an_audit_event() {
    expires_after(601, "the session was idle for longer than idle_timeout").await;
}

#[tokio::test]
async fn a_live_session_is_not_reported() {
    let clock = Clock::manual(1_000);
    let sessions = manager_on(Arc::new(AtomicBool::new(false)), clock.clone()).await;
    let (_, live) = sessions.create(login(), None).await.expect("create");
    let (events, _guard) = captured_events();
    clock.advance(599);
    assert!(sessions.get(&live.key).await.expect("store").is_some());
    assert!(events.lines().is_empty());
}
