//! From `[audit]` to the layer: the event names checked (for `doorward
//! check`, at their key) and the sink opened (for `serve`).

use std::sync::Arc;

use super::layer::{AuditLayer, Selection};
use super::sink::{Destination, Sink};
use crate::config::audit::{AuditConfig, AuditDestination};
use crate::config::Config;

/// The kinds `[audit] events` selects, or each bad entry as (key path,
/// message).
pub fn selection(config: &AuditConfig) -> Result<Selection, Vec<(String, String)>> {
    Selection::parse(config.events.iter().map(|name| name.0.as_str())).map_err(|problems| {
        problems
            .into_iter()
            .map(|(i, message)| (format!("audit.events[{i}]"), message))
            .collect()
    })
}

/// `[audit]`'s problems, for `build::problems` (so `check` refuses what
/// `serve` would). Opening the file is left to `serve`: a check writes
/// nothing.
pub fn problems(config: &Config) -> Vec<(String, String)> {
    if !config.audit.enabled {
        return Vec::new();
    }
    match selection(&config.audit) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

/// The audit layer `[audit]` asks for, its sink open; `None` when the
/// trail is off.
pub fn layer(config: &AuditConfig) -> Result<Option<AuditLayer>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let selection = selection(config).map_err(|problems| {
        let lines: Vec<String> = problems.into_iter().map(|(k, m)| format!("{k}: {m}")).collect();
        lines.join("; ")
    })?;
    let destination = match &config.destination {
        AuditDestination::Stderr => Destination::Stderr,
        AuditDestination::File(path) => Destination::File(path.clone()),
    };
    let sink = Sink::open(destination).map_err(|e| match &config.destination {
        AuditDestination::File(path) => format!("audit.destination: cannot open {}: {e}", path.display()),
        AuditDestination::Stderr => format!("audit.destination: {e}"),
    })?;
    Ok(Some(AuditLayer::new(Arc::new(sink), selection)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::PASSING_BASE;
    use crate::config::ConfigError;

    /// Problems as `doorward check` reports them: key, line, message.
    fn check(audit: &str) -> Vec<(String, usize, String)> {
        let text = format!("{PASSING_BASE}{audit}");
        match crate::config::parse_str_with(&text, "doorward.toml", &problems) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(found)) => found.into_iter().map(|p| (p.key, p.line, p.message)).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn known_event_names_and_all_pass_the_check() {
        assert!(check("").is_empty());
        assert!(check("[audit]\nevents = [\"login-failed\", \"access-denied\"]\n").is_empty());
        assert!(check("[audit]\nevents = [\"all\"]\n").is_empty());
    }

    #[test]
    fn an_unknown_event_name_is_refused_at_its_key_and_line() {
        let lines = PASSING_BASE.lines().count();
        let found = check("[audit]\ndestination = \"stderr\"\nevents = [\"logout\", \"login\"]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        let (key, line, message) = &found[0];
        assert_eq!(key, "audit.events[1]");
        assert_eq!(*line, lines + 3, "{found:?}");
        assert!(message.starts_with("`login` is not an audit event"), "{message}");
    }

    #[test]
    fn names_are_not_checked_when_the_trail_is_off() {
        assert!(check("[audit]\nenabled = false\nevents = [\"login\"]\n").is_empty());
    }

    #[test]
    fn the_layer_is_none_when_off_and_a_file_it_cannot_open_is_an_error() {
        let off = crate::config::parse_str(&format!("{PASSING_BASE}[audit]\nenabled = false\n"), "t").expect("parses");
        assert!(layer(&off.audit).expect("fine").is_none());
        let dir = tempfile::tempdir().expect("dir");
        let bad = dir.path().join("missing/audit.json");
        let text = format!("{PASSING_BASE}[audit]\ndestination = {:?}\n", bad.display().to_string());
        let config = crate::config::parse_str(&text, "t").expect("parses");
        let error = layer(&config.audit).err().expect("cannot open");
        assert!(error.starts_with("audit.destination: cannot open"), "{error}");
        let good = dir.path().join("audit.json");
        let text = format!(
            "{PASSING_BASE}[audit]\ndestination = {:?}\n",
            good.display().to_string()
        );
        let config = crate::config::parse_str(&text, "t").expect("parses");
        let layer = layer(&config.audit).expect("opens").expect("on");
        assert_eq!(layer.sink().path(), Some(good.as_path()));
    }
}
