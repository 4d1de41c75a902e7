//! Logging setup: human or JSON lines on stdout, filtered by `[log].level`
//! (or `RUST_LOG` when set, for a one-off debugging run), and beside them
//! the audit trail (`crate::audit`), when it is on.
//!
//! Each stream has its own filter. The ordinary log never carries audit
//! events while the trail is on (an event belongs to one stream), and the
//! trail does not depend on the log level: `level = "warn"` must not
//! silence who logged in. With the trail off, audit events are ordinary
//! info lines on target `doorward::audit`, subject to the level like any.
//!
//! With `[traces]` on, a third layer sends the request spans and the
//! trace-only spans (target [`traces::TARGET`]) to OpenTelemetry
//! ([`export`]); it takes spans only, never events. The log never shows
//! the trace-only spans, so its lines read the same either way; with
//! traces off no layer wants them, and their callsites are disabled once.

pub mod export;
pub mod traces;

use std::io::IsTerminal;

use opentelemetry_sdk::trace::SdkTracer;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::audit::{is_audit, is_audit_or_request, AuditLayer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One JSON object a line, for log shippers.
    Json,
    /// Human-readable, coloured on a terminal.
    Pretty,
}

/// A layer (the log in either format, the audit trail, traces), named once.
type LogLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Starts logging at `level` (an `EnvFilter` directive) unless `RUST_LOG`
/// says otherwise, the audit trail when `audit` is given, and traces when
/// `traces` is (their exports run on `runtime`). The returned exporter is
/// shut down at exit, to send the last spans.
pub fn init(
    level: &str,
    format: LineFormat,
    audit: Option<AuditLayer>,
    traces: Option<(export::TraceSettings, tokio::runtime::Handle)>,
) -> Result<Option<export::Traces>, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::builder().parse(&directive),
        _ => EnvFilter::builder().parse(level),
    }
    .map_err(|e| format!("bad log filter: {e}"))?;
    let ansi = std::io::stdout().is_terminal();
    let (running, tracer) = match traces {
        Some((settings, runtime)) => {
            let (running, tracer) = export::start(settings, runtime)?;
            (Some(running), Some(tracer))
        }
        None => (None, None),
    };
    subscriber(filter, format, audit, tracer, std::io::stdout, ansi)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(running)
}

/// A filter decided by the callsite alone, so that its verdict is cached
/// per callsite (a disabled span then costs one interest check, where a
/// `filter_fn` would be asked again at every span and event).
#[derive(Clone, Copy)]
struct Static<F>(F);

impl<S, F: Fn(&Metadata<'_>) -> bool> Filter<S> for Static<F> {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        (self.0)(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        match (self.0)(metadata) {
            true => Interest::always(),
            false => Interest::never(),
        }
    }
}

/// What the OpenTelemetry layer takes: each request's span and the
/// trace-only spans; no events (they may carry anything).
fn is_traced(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && (metadata.target() == traces::TARGET
            || (metadata.name() == "request" && metadata.target().starts_with("doorward::proxy")))
}

/// The log (written with `writer`) and the audit trail, each behind its
/// own filter.
fn subscriber<W>(
    filter: EnvFilter,
    format: LineFormat,
    audit: Option<AuditLayer>,
    tracer: Option<SdkTracer>,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    let log: LogLayer = match format {
        LineFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LineFormat::Pretty => fmt.boxed(),
    };
    let not_traced = Static(|metadata: &Metadata<'_>| metadata.target() != traces::TARGET);
    let audited = audit.is_some();
    let log = log.with_filter(
        not_traced
            .and(filter)
            .and(Static(move |metadata: &Metadata<'_>| !(audited && is_audit(metadata)))),
    );
    // One list, each layer behind its own filter: an absent layer must be
    // left out, not be `None` (a `None` layer wants every callsite, which
    // would turn the disabled trace spans back on).
    let mut layers: Vec<LogLayer> = vec![log.boxed()];
    if let Some(audit) = audit {
        layers.push(audit.with_filter(Static(is_audit_or_request)).boxed());
    }
    // Span fields and timings only: no code locations, threads or levels
    // (noise in every span), no OpenTelemetry context kept current (the
    // upstream's `traceparent` is read from the span itself).
    if let Some(tracer) = tracer {
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(Static(is_traced));
        layers.push(otel.boxed());
    }
    tracing_subscriber::registry().with(layers)
}

#[cfg(test)]
mod tests;
