//! The `tracing` layer that turns audit events into the audit stream: it
//! takes the events on [`TARGET`] (and nothing else: no spans, no level,
//! no target, no other event), keeps the kinds the config selects, and
//! writes each as one ECS JSON line ([`ecs`](super::ecs)) to the
//! [`Sink`].
//!
//! The ordinary log leaves these events out while the trail is on
//! ([`is_audit`] is the filter both sides use), so an event is in one
//! stream, never two.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::ecs;
use super::sink::Sink;
use super::{Kind, TARGET};

/// Whether an event or span belongs to the audit trail.
pub fn is_audit(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET
}

/// What the audit layer is shown: its events, and the request spans they
/// happen in (for the request id).
pub fn is_audit_or_request(metadata: &Metadata<'_>) -> bool {
    is_audit(metadata) || (metadata.is_span() && metadata.name() == REQUEST_SPAN)
}

/// The span every proxied request runs in (`info_span!("request", id)`).
const REQUEST_SPAN: &str = "request";

/// A request span's id, kept in the span's extensions.
struct RequestId(String);

/// The kinds of event the trail writes (`[audit] events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Bit `i` for `Kind::ALL[i]`.
    kinds: u32,
    /// `"all"`: also events of a kind this build does not name.
    all: bool,
}

impl Selection {
    pub const fn all() -> Self {
        Self {
            kinds: u32::MAX,
            all: true,
        }
    }

    /// From `events` as configured: `all`, or event names. Each problem is
    /// (index in the list, message).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, Vec<(usize, String)>> {
        let mut selection = Self { kinds: 0, all: false };
        let mut problems = Vec::new();
        let mut count = 0;
        for (i, name) in names.into_iter().enumerate() {
            count += 1;
            if name == "all" {
                selection = Self::all();
                continue;
            }
            match Kind::parse(name) {
                Some(kind) => selection.kinds |= bit(kind),
                None => {
                    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    problems.push((
                        i,
                        format!(
                            "`{name}` is not an audit event; use \"all\" or some of: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        if count == 0 {
            problems.push((
                0,
                "no events selected: list some (or \"all\"), or set enabled = false".into(),
            ));
        }
        if problems.is_empty() {
            Ok(selection)
        } else {
            Err(problems)
        }
    }

    /// Whether an event whose `audit.kind` is `action` is written.
    pub fn allows(&self, action: &str) -> bool {
        match Kind::parse(action) {
            Some(kind) => self.kinds & bit(kind) != 0,
            None => self.all,
        }
    }
}

fn bit(kind: Kind) -> u32 {
    let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    1 << index
}

/// Writes the selected audit events to the sink.
pub struct AuditLayer {
    sink: Arc<Sink>,
    selection: Selection,
}

impl AuditLayer {
    pub fn new(sink: Arc<Sink>, selection: Selection) -> Self {
        Self { sink, selection }
    }

    /// The sink, for reopening it on SIGHUP.
    pub fn sink(&self) -> Arc<Sink> {
        Arc::clone(&self.sink)
    }
}

impl<S> Layer<S> for AuditLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != REQUEST_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let request_id = fields
            .rest
            .into_iter()
            .find(|(name, _)| *name == "id")
            .and_then(|(_, value)| value.as_str().map(str::to_string));
        if let (Some(request_id), Some(span)) = (request_id, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !is_audit(event.metadata()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The request it happened in ties it to the access log.
        if !fields.rest.iter().any(|(name, _)| *name == "request_id") {
            let from_span = ctx.event_scope(event).and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
            });
            if let Some(request_id) = from_span {
                fields.rest.push(("request_id", request_id.into()));
            }
        }
        // An event without a kind did not come through `audit!`; it is
        // still written, as "unknown", rather than lost.
        let action = fields.kind.take().unwrap_or_else(|| "unknown".to_string());
        if !self.selection.allows(&action) {
            return;
        }
        let document = ecs::document(&action, fields.rest, chrono::Utc::now(), &event_id());
        match serde_json::to_vec(&document) {
            Ok(line) => self.sink.write_line(&line),
            // A map of strings, numbers and bools always serialises.
            Err(_) => self.sink.write_line(br#"{"error":"unserialisable audit event"}"#),
        }
    }
}

/// A random event id (UUID version 4 form), so a SIEM can tell two
/// identical events apart and deduplicate a line shipped twice.
fn event_id() -> String {
    const VERSION_MASK: u128 = 0xF << 76;
    const VERSION_4: u128 = 0x4 << 76;
    const VARIANT_MASK: u128 = 0x3 << 62;
    const VARIANT_RFC: u128 = 0x2 << 62;
    let random: u128 = rand::random();
    let bits = (random & !VERSION_MASK & !VARIANT_MASK) | VERSION_4 | VARIANT_RFC;
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An event's fields as JSON values, `audit.kind` apart.
#[derive(Default)]
struct Fields {
    kind: Option<String>,
    rest: Vec<(&'static str, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "audit.kind" {
            self.kind = value.as_str().map(str::to_string);
        } else {
            self.rest.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    /// `%value` fields arrive here too, formatted with `Display`.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests;
