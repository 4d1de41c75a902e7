//! Logging setup: human or JSON lines on stdout, filtered by `[log].level`
//! (or `RUST_LOG` when set, for a one-off debugging run), and beside them
//! the audit trail (`crate::audit`), when it is on.
//!
//! Each stream has its own filter. The ordinary log never carries audit
//! events while the trail is on (an event belongs to one stream), and the
//! trail does not depend on the log level: `level = "warn"` must not
//! silence who logged in. With the trail off, audit events are ordinary
//! info lines on target `doorward::audit`, subject to the level like any.

use std::io::IsTerminal;

use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
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

/// The ordinary log's layer, either format, named once.
type LogLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Starts logging at `level` (an `EnvFilter` directive) unless `RUST_LOG`
/// says otherwise, and the audit trail when `audit` is given.
pub fn init(level: &str, format: LineFormat, audit: Option<AuditLayer>) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::builder().parse(&directive),
        _ => EnvFilter::builder().parse(level),
    }
    .map_err(|e| format!("bad log filter: {e}"))?;
    let ansi = std::io::stdout().is_terminal();
    subscriber(filter, format, audit, std::io::stdout, ansi)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
}

/// The log (written with `writer`) and the audit trail, each behind its
/// own filter.
fn subscriber<W>(
    filter: EnvFilter,
    format: LineFormat,
    audit: Option<AuditLayer>,
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
    let audited = audit.is_some();
    let log = log.with_filter(filter.and(filter_fn(move |metadata| !(audited && is_audit(metadata)))));
    let audit = audit.map(|layer| layer.with_filter(filter_fn(is_audit_or_request)));
    tracing_subscriber::registry().with(log).with(audit)
}

#[cfg(test)]
mod tests;
