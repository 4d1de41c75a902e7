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
    let subscriber = subscriber(filter, LineFormat::Json, audit, None, move || writer.clone(), false);
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

/// With traces off (no tracer given), a trace-only span is disabled even
/// at the most verbose level, with the audit trail on or off, and a line
/// logged inside one names the request span around it, exactly as if the
/// trace span were not there.
#[test]
fn trace_spans_never_reach_the_log() {
    trace_spans_never_reach_the_log_with(false);
    trace_spans_never_reach_the_log_with(true);
}

fn trace_spans_never_reach_the_log_with(audit_on: bool) {
    let log = Captured::default();
    let writer = log.clone();
    let filter = EnvFilter::builder().parse("trace").expect("filter");
    let audit = audit_on.then(|| {
        let sink = Sink::open(Destination::Writer(Box::new(Captured::default()))).expect("sink");
        AuditLayer::new(Arc::new(sink), Selection::all())
    });
    let subscriber = subscriber(filter, LineFormat::Json, audit, None, move || writer.clone(), false);
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("request", id = "r-1");
        let _request = request.enter();
        let store = tracing::info_span!(target: "doorward::trace", "doorward.store", db.operation.name = "get");
        assert!(store.is_disabled(), "no layer takes a trace span while traces are off");
        let _store = store.enter();
        tracing::info!("inside");
    });
    let text = log.text();
    assert!(
        text.contains("\"span\":{\"id\":\"r-1\",\"name\":\"request\"}"),
        "{text}"
    );
    assert!(
        !text.contains("doorward.store") && !text.contains("db.operation"),
        "{text}"
    );
}
