//! An audit event as an Elastic Common Schema document: which ECS
//! categorisation each [`Kind`] gets, where doorward's field names go, and
//! the one JSON line that results. Pure: the layer collects the fields and
//! the time, this module decides the shape, so the shape is tested without
//! a subscriber.
//!
//! ECS 8.11. Categories and types are the ones ECS expects together
//! (authentication: start/end/info; session: start/end; iam: change, user,
//! group, creation, deletion; configuration: change/info; web: access,
//! denied), so SIEM rules written for ECS (`event.category:authentication
//! and event.outcome:failure`) match doorward's events unchanged.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::Kind;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Unknown => "unknown",
        }
    }
}

/// How ECS files one kind of event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categorisation {
    pub category: &'static [&'static str],
    pub types: Vec<&'static str>,
    pub outcome: Outcome,
}

/// ECS categorisation of `kind`. `refused` is whether the event carries a
/// `reason` (a step-up that was refused says why; one that held does not);
/// `scim` is the event's (`resource_type`, `operation`), for SCIM changes.
pub fn categorise(kind: Kind, refused: bool, scim: (Option<&str>, Option<&str>)) -> Categorisation {
    let (category, types, outcome): (&'static [&'static str], Vec<&'static str>, Outcome) = match kind {
        Kind::LoginSucceeded => (&["authentication", "session"], vec!["start"], Outcome::Success),
        Kind::LoginFailed => (&["authentication"], vec!["start"], Outcome::Failure),
        Kind::StepUp if refused => (&["authentication"], vec!["info"], Outcome::Failure),
        Kind::StepUp => (&["authentication"], vec!["info"], Outcome::Success),
        Kind::Logout => (&["authentication", "session"], vec!["end"], Outcome::Success),
        Kind::SessionEnded => (&["session"], vec!["end"], Outcome::Success),
        Kind::AccessDenied => (&["web"], vec!["access", "denied"], Outcome::Failure),
        // An attempt to authenticate with a token, refused.
        Kind::BearerRefused => (&["authentication"], vec!["start"], Outcome::Failure),
        Kind::ScimChange => (&["iam"], scim_types(scim.0, scim.1), Outcome::Success),
        Kind::ConfigReloaded => (&["configuration"], vec!["change"], Outcome::Success),
        Kind::ConfigRefused => (&["configuration"], vec!["change"], Outcome::Failure),
        // A state in force, not an attempt at something.
        Kind::Weakened => (&["configuration"], vec!["info"], Outcome::Unknown),
    };
    Categorisation {
        category,
        types,
        outcome,
    }
}

/// IAM types of a SCIM write: what changed (user or group) and how.
fn scim_types(resource_type: Option<&str>, operation: Option<&str>) -> Vec<&'static str> {
    let mut types = Vec::with_capacity(2);
    match resource_type.map(str::to_ascii_lowercase).as_deref() {
        Some(t) if t.contains("group") => types.push("group"),
        Some(t) if t.contains("user") => types.push("user"),
        _ => {}
    }
    types.push(match operation.map(str::to_ascii_lowercase).as_deref() {
        Some("create" | "post") => "creation",
        Some("delete") => "deletion",
        _ => "change",
    });
    types
}

/// Where a field `audit!` was given goes in the document: ECS's own
/// fields where one means the same, everything else under `doorward.`.
fn ecs_path(field: &str) -> Vec<&str> {
    match field {
        "user" => vec!["user", "name"],
        "subject" => vec!["user", "id"],
        "request_id" => vec!["http", "request", "id"],
        "reason" => vec!["event", "reason"],
        "message" => vec!["message"],
        other => {
            let mut path = vec!["doorward"];
            path.extend(other.split('.'));
            path
        }
    }
}

/// Builds the document. `action` is the event's `audit.kind` as emitted
/// (an unknown name is still written, uncategorised: never dropped);
/// `fields` are the rest, in emission order.
pub fn document(action: &str, fields: Vec<(&str, Value)>, at: DateTime<Utc>, id: &str) -> Value {
    let find = |name: &str| fields.iter().find(|(f, _)| *f == name).and_then(|(_, v)| v.as_str());
    let refused = fields.iter().any(|(f, _)| *f == "reason");
    let categorised =
        Kind::parse(action).map(|kind| categorise(kind, refused, (find("resource_type"), find("operation"))));

    let mut doc = Map::new();
    doc.insert(
        "@timestamp".into(),
        at.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
    );
    insert(&mut doc, &["ecs", "version"], ECS_VERSION.into());
    insert(&mut doc, &["service", "name"], "doorward".into());
    insert(&mut doc, &["service", "version"], env!("CARGO_PKG_VERSION").into());
    insert(&mut doc, &["event", "kind"], "event".into());
    insert(&mut doc, &["event", "id"], id.into());
    insert(&mut doc, &["event", "action"], action.into());
    let outcome = categorised.as_ref().map_or(Outcome::Unknown, |c| c.outcome);
    insert(&mut doc, &["event", "outcome"], outcome.as_str().into());
    if let Some(c) = categorised {
        insert(&mut doc, &["event", "category"], c.category.to_vec().into());
        insert(&mut doc, &["event", "type"], c.types.into());
    }
    for (field, value) in fields {
        let value = match (field, value) {
            // A list travels as one comma-joined string (tracing has no
            // list values); a SIEM wants the list.
            ("fields", Value::String(list)) => list.split(',').filter(|f| !f.is_empty()).collect(),
            (_, value) => value,
        };
        insert(&mut doc, &ecs_path(field), value);
    }
    Value::Object(doc)
}

/// Sets `path` in `doc`, making the objects on the way. A field whose
/// path runs into a value already set (only a field named like one of
/// ECS's, which `audit!`'s names avoid) is kept under `doorward.` instead.
fn insert(doc: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = &mut *doc;
    for parent in parents {
        let next = at
            .entry((*parent).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(map) => at = map,
            _ => return,
        }
    }
    at.insert((*last).to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_717_171_717_123).single().expect("a time")
    }

    fn doc(action: &str, fields: Vec<(&str, Value)>) -> Value {
        document(action, fields, at(), "e-1")
    }

    #[test]
    fn every_kind_has_the_ecs_category_type_and_outcome_it_means() {
        let cases = [
            (
                Kind::LoginSucceeded,
                &["authentication", "session"][..],
                &["start"][..],
                "success",
            ),
            (Kind::LoginFailed, &["authentication"], &["start"], "failure"),
            (Kind::StepUp, &["authentication"], &["info"], "success"),
            (Kind::Logout, &["authentication", "session"], &["end"], "success"),
            (Kind::SessionEnded, &["session"], &["end"], "success"),
            (Kind::AccessDenied, &["web"], &["access", "denied"], "failure"),
            (Kind::BearerRefused, &["authentication"], &["start"], "failure"),
            (Kind::ScimChange, &["iam"], &["change"], "success"),
            (Kind::ConfigReloaded, &["configuration"], &["change"], "success"),
            (Kind::ConfigRefused, &["configuration"], &["change"], "failure"),
            (Kind::Weakened, &["configuration"], &["info"], "unknown"),
        ];
        assert_eq!(cases.len(), Kind::ALL.len(), "every kind is here");
        for (kind, category, types, outcome) in cases {
            let d = doc(kind.as_str(), vec![]);
            assert_eq!(d["event"]["action"], kind.as_str());
            assert_eq!(d["event"]["category"], serde_json::json!(category), "{kind:?}");
            assert_eq!(d["event"]["type"], serde_json::json!(types), "{kind:?}");
            assert_eq!(d["event"]["outcome"], outcome, "{kind:?}");
        }
    }

    #[test]
    fn a_step_up_with_a_reason_was_refused() {
        let d = doc("step-up", vec![("reason", "acr too weak".into())]);
        assert_eq!(d["event"]["outcome"], "failure");
        assert_eq!(d["event"]["reason"], "acr too weak");
    }

    #[test]
    fn scim_changes_say_what_changed_and_how() {
        let d = doc(
            "scim-change",
            vec![("resource_type", "User".into()), ("operation", "delete".into())],
        );
        assert_eq!(d["event"]["type"], serde_json::json!(["user", "deletion"]));
        let d = doc(
            "scim-change",
            vec![("resource_type", "Group".into()), ("operation", "create".into())],
        );
        assert_eq!(d["event"]["type"], serde_json::json!(["group", "creation"]));
        let d = doc(
            "scim-change",
            vec![("resource_type", "Group".into()), ("operation", "patch".into())],
        );
        assert_eq!(d["event"]["type"], serde_json::json!(["group", "change"]));
        assert_eq!(d["doorward"]["resource_type"], "Group");
    }

    #[test]
    fn the_scim_field_names_are_a_list() {
        let d = doc(
            "scim-change",
            vec![("fields", "active,userName".into()), ("field_count", 2.into())],
        );
        assert_eq!(d["doorward"]["fields"], serde_json::json!(["active", "userName"]));
        assert_eq!(d["doorward"]["field_count"], 2);
        let d = doc("scim-change", vec![("fields", "".into())]);
        assert_eq!(
            d["doorward"]["fields"],
            serde_json::json!([]),
            "a delete writes no field"
        );
    }

    #[test]
    fn fields_go_to_their_ecs_names_and_the_rest_under_doorward() {
        let d = doc(
            "login-succeeded",
            vec![
                ("user", "alice@example.com".into()),
                ("subject", "sub-1".into()),
                ("request_id", "r-9".into()),
                ("provider", "okta".into()),
                ("session", "ab12".into()),
                ("count", 3.into()),
                ("something.new", true.into()),
            ],
        );
        assert_eq!(d["@timestamp"], "2024-05-31T16:08:37.123Z");
        assert_eq!(d["ecs"]["version"], ECS_VERSION);
        assert_eq!(d["service"]["name"], "doorward");
        assert_eq!(d["event"]["kind"], "event");
        assert_eq!(d["event"]["id"], "e-1");
        assert_eq!(d["user"]["name"], "alice@example.com");
        assert_eq!(d["user"]["id"], "sub-1");
        assert_eq!(d["http"]["request"]["id"], "r-9");
        assert_eq!(d["doorward"]["provider"], "okta");
        assert_eq!(d["doorward"]["session"], "ab12");
        assert_eq!(d["doorward"]["count"], 3);
        assert_eq!(d["doorward"]["something"]["new"], true);
        let top: Vec<&String> = d.as_object().expect("object").keys().collect();
        assert_eq!(
            top,
            ["@timestamp", "doorward", "ecs", "event", "http", "service", "user"],
            "nothing else at the top"
        );
    }

    #[test]
    fn an_unknown_action_is_written_uncategorised() {
        let d = doc("new-kind", vec![]);
        assert_eq!(d["event"]["action"], "new-kind");
        assert_eq!(d["event"]["outcome"], "unknown");
        assert!(d["event"].get("category").is_none());
    }
}
