//! The human form of an [`Outcome`] with its reasons, for `doorward
//! explain` (the JSON form is the Outcome serialized).

use std::fmt::Write;

use super::assurance::{AssuranceAsk, Authentication, ASSURANCE_SKEW};
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

/// How a login was made and what a route asks of it, for `explain`:
/// the same judgement the gate makes (`AssuranceAsk::shortfall`) at `now`.
pub struct Assurance<'a> {
    authentication: &'a Authentication,
    ask: Option<&'a AssuranceAsk>,
    shortfall: Option<String>,
    now: i64,
}

impl<'a> Assurance<'a> {
    pub fn judge(authentication: &'a Authentication, ask: Option<&'a AssuranceAsk>, now: i64) -> Self {
        let shortfall = ask
            .and_then(|ask| ask.shortfall(authentication, now, ASSURANCE_SKEW))
            .map(|why| why.to_string());
        Self {
            authentication,
            ask,
            shortfall,
            now,
        }
    }

    /// `{"asked": {...}, "met": bool, "reason": ...}` when the route asks
    /// for anything.
    pub fn step_up_json(&self) -> Option<serde_json::Value> {
        let ask = self.ask.filter(|ask| !ask.is_empty())?;
        Some(serde_json::json!({
            "asked": ask,
            "met": self.shortfall.is_none(),
            "reason": self.shortfall,
        }))
    }

    pub fn render(&self) -> String {
        let a = self.authentication;
        let mut out = String::new();
        let amr = if a.amr.is_empty() {
            "(none)".to_string()
        } else {
            a.amr.join(", ")
        };
        let when = match a.auth_time {
            Some(t) => format!("{t} ({} s ago)", self.now.saturating_sub(t)),
            None => "(none)".into(),
        };
        let _ = writeln!(out, "acr:      {}", a.acr.as_deref().unwrap_or("(none)"));
        let _ = writeln!(out, "amr:      {amr}");
        let _ = writeln!(out, "auth:     {when}");
        if let Some(ask) = self.ask.filter(|ask| !ask.is_empty()) {
            let mut asked = Vec::new();
            if !ask.acr.is_empty() {
                asked.push(format!("acr one of {}", ask.acr.join(", ")));
            }
            if !ask.amr.is_empty() {
                asked.push(format!("amr one of {}", ask.amr.join(", ")));
            }
            if let Some(max_age) = ask.max_age {
                asked.push(format!("max_age {max_age} s"));
            }
            let verdict = match &self.shortfall {
                None => "met".to_string(),
                Some(why) => format!("STEP-UP ({why})"),
            };
            let _ = writeln!(out, "route:    asks {}: {verdict}", asked.join(", "));
        }
        out
    }
}
