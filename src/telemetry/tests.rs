//! Which stream each event reaches, with the trail on and off.

use std::sync::Arc;

use super::*;
use crate::audit::sink::{Captured, Destination, Sink};
use crate::audit::{Kind, Selection};

/// Emits one ordinary warning and one audit event with the log at
/// `level`; returns (log, audit trail).
fn run(level: &str, audit_on: bool) -> (String, String) {
    let (log, trail) = (Captured::default(), Captured::default());
    let audit = audit_on.then(|| {
        let sink = Sink::open(Destination::Writer(Box::new(trail.clone()))).expect("sink");
        AuditLayer::new(Arc::new(sink), Selection::all())
    });
    let writer = log.clone();
    let filter = EnvFilter::builder().parse(level).expect("filter");
    let subscriber = subscriber(filter, LineFormat::Json, audit, move || writer.clone(), false);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!("an ordinary warning");
        crate::audit!(Kind::LoginSucceeded, user = "alice@example.com");
    });
    (log.text(), trail.text())
}

#[test]
fn with_the_trail_on_audit_events_leave_the_log_and_ignore_its_level() {
    let (log, trail) = run("warn", true);
    assert!(log.contains("an ordinary warning"), "{log}");
    assert!(
        !log.contains("alice@example.com"),
        "the log leaves audit events out: {log}"
    );
    assert_eq!(trail.lines().count(), 1, "{trail}");
    assert!(trail.contains("\"action\":\"login-succeeded\""), "{trail}");
    assert!(!trail.contains("an ordinary warning"), "{trail}");
}

#[test]
fn with_the_trail_off_audit_events_are_ordinary_info_lines() {
    let (log, _) = run("info", false);
    assert!(
        log.contains("alice@example.com") && log.contains("doorward::audit"),
        "{log}"
    );
    let (log, _) = run("warn", false);
    assert!(!log.contains("alice@example.com"), "below the level: {log}");
}
