//! Logging setup: human or JSON lines on stdout, filtered by `[log].level`
//! (or `RUST_LOG` when set, for a one-off debugging run).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One JSON object a line, for log shippers.
    Json,
    /// Human-readable, coloured on a terminal.
    Pretty,
}

/// Starts logging at `level` (an `EnvFilter` directive) unless `RUST_LOG`
/// says otherwise.
pub fn init(level: &str, format: LineFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::builder().parse(&directive),
        _ => EnvFilter::builder().parse(level),
    }
    .map_err(|e| format!("bad log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal());
    let result = match format {
        LineFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LineFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| format!("cannot start logging: {e}"))
}
