//! The human form of an [`Outcome`] with its reasons, for `doorward
//! explain` (the JSON form is the Outcome serialized).

use std::fmt::Write;

use super::engine::{Action, Outcome};

pub fn render(outcome: &Outcome) -> String {
    let id = &outcome.identity;
    let mut out = String::new();
    let list = |items: &[String]| {
        if items.is_empty() {
            "(none)".to_string()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(out, "user:     {}", id.user);
    let _ = writeln!(out, "subject:  {}", id.subject);
    let _ = writeln!(out, "email:    {}", id.email.as_deref().unwrap_or("(none)"));
    let _ = writeln!(out, "groups:   {}", list(&id.groups));
    let _ = writeln!(out, "roles:    {}", list(&id.roles));
    if let Some(role) = &id.role {
        let _ = writeln!(out, "role:     {role} (highest)");
    }
    let _ = writeln!(out, "orgs:     {}", list(&id.orgs));
    match &outcome.login.reason {
        None => {
            let _ = writeln!(out, "login:    allowed");
        }
        Some(reason) => {
            let _ = writeln!(out, "login:    DENIED ({reason})");
        }
    }
    if let Some(overage) = &outcome.overage {
        let _ = writeln!(
            out,
            "overage:  `{}` is a distributed claim ({}; fetch {})",
            overage.claim,
            overage.endpoint.as_deref().unwrap_or("no endpoint"),
            if overage.fetch { "on" } else { "off" }
        );
    }
    if !outcome.reasons.is_empty() {
        let _ = writeln!(out, "\nwhy:");
        for reason in &outcome.reasons {
            let mark = match reason.action {
                Action::Kept => "+",
                Action::Added => "+",
                Action::Dropped => "-",
                Action::Note => "·",
            };
            let _ = writeln!(out, "  {mark} {:<5} {:<24} {}", reason.part, reason.value, reason.rule);
        }
    }
    out
}
