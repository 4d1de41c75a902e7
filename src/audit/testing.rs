//! For tests elsewhere in the crate: the audit events emitted on this
//! thread while a guard is held, as the ECS documents the sink would write.

use std::sync::Arc;

use serde_json::Value;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;

use super::sink::{Captured, Destination};
use super::{is_audit, AuditLayer, Selection, Sink};

/// What the audit sink received.
#[derive(Clone, Default)]
pub struct CapturedEvents(Captured);

impl CapturedEvents {
    /// Each line written so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.0
            .text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect()
    }
}

/// Captures the `selection`'s events on this thread (a current-thread
/// runtime's tasks included) until the guard drops.
pub fn capture(selection: Selection) -> (CapturedEvents, DefaultGuard) {
    let buffer = Captured::default();
    let sink = Sink::open(Destination::Writer(Box::new(buffer.clone()))).expect("sink");
    let layer = AuditLayer::new(Arc::new(sink), selection).with_filter(tracing_subscriber::filter::filter_fn(is_audit));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (CapturedEvents(buffer), guard)
}

/// Captures every kind of event.
pub fn captured_events() -> (CapturedEvents, DefaultGuard) {
    capture(Selection::all())
}
