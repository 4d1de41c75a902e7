//! `[audit]`: the audit trail (one ECS JSON line per security-relevant
//! fact, apart from the ordinary log): on or off, where it goes, and which
//! kinds of event it carries.
//!
//! The event names are checked where the audit layer is built
//! (`audit::Selection`, from `build::problems`), not here: the names belong
//! to the audit module, and config imports nothing that runs.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Off: no audit stream; audit events then go to the ordinary log as
    /// info lines on target `doorward::audit` (when its level lets them).
    pub enabled: bool,
    /// `"stderr"` (the default) or a file path, appended to and created
    /// mode 0600, reopened on SIGHUP (log rotation).
    pub destination: AuditDestination,
    /// `["all"]`, or the event names to write (`login-failed`, ...).
    pub events: Vec<AuditEventName>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            destination: AuditDestination::Stderr,
            events: vec![AuditEventName("all".into())],
        }
    }
}

/// Where audit lines are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDestination {
    Stderr,
    /// Appended to; `./stderr` names a file called `stderr`.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditDestination {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "stderr" => Ok(Self::Stderr),
            "" => Err(serde::de::Error::custom(
                "destination is \"stderr\" or a file path, not empty",
            )),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

/// An entry of `events`: `all` or an event's name, as written; whether it
/// names an event is checked by the audit module.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AuditEventName(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::{has_problem as has, problems_with as problems, PASSING_BASE};

    #[test]
    fn audit_is_on_to_stderr_for_every_event_by_default() {
        let config = crate::config::parse_str(PASSING_BASE, "doorward.toml").expect("parses");
        assert!(config.audit.enabled);
        assert_eq!(config.audit.destination, AuditDestination::Stderr);
        assert_eq!(config.audit.events, vec![AuditEventName("all".into())]);
    }

    #[test]
    fn a_destination_is_stderr_or_a_path() {
        let text = "[audit]\ndestination = \"/var/log/doorward/audit.json\"\nevents = [\"login-failed\"]\n";
        let config = crate::config::parse_str(&format!("{PASSING_BASE}{text}"), "doorward.toml").expect("parses");
        assert_eq!(
            config.audit.destination,
            AuditDestination::File("/var/log/doorward/audit.json".into())
        );
        let p = problems("[audit]\ndestination = \"\"\n");
        assert!(
            has(&p, "audit.destination: destination is \"stderr\" or a file path"),
            "{p:?}"
        );
        let p = problems("[audit]\nenabeld = false\n");
        assert!(has(&p, "audit.enabeld: unknown field"), "{p:?}");
    }
}
