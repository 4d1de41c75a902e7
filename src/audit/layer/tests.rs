//! The layer under a real subscriber: what reaches the sink, and what
//! does not.

use serde_json::Value;

use super::*;

/// Runs `emit` under a subscriber with the audit layer (filtered as
/// telemetry filters it) and returns the lines it wrote.
fn audited(selection: Selection, emit: impl FnOnce()) -> Vec<Value> {
    let (events, guard) = crate::audit::testing::capture(selection);
    emit();
    drop(guard);
    events.lines()
}

#[test]
fn an_audit_event_is_one_ecs_line_without_tracing_noise() {
    let lines = audited(Selection::all(), || {
        let span = tracing::info_span!("request", request_id = "span-field", path = "/secret-path");
        let _entered = span.enter();
        tracing::info!(user = "not-audit", "an ordinary line");
        crate::audit!(
            Kind::LoginFailed,
            provider = "okta",
            user = %"alice@example.com",
            reason = "the IdP said access_denied",
            request_id = "r-1"
        );
    });
    assert_eq!(lines.len(), 1, "only the audit event: {lines:?}");
    let line = &lines[0];
    assert_eq!(line["event"]["action"], "login-failed");
    assert_eq!(line["event"]["outcome"], "failure");
    assert_eq!(line["event"]["reason"], "the IdP said access_denied");
    assert_eq!(line["user"]["name"], "alice@example.com");
    assert_eq!(line["http"]["request"]["id"], "r-1");
    assert_eq!(line["doorward"]["provider"], "okta");
    let text = line.to_string();
    for noise in [
        "span-field",
        "secret-path",
        "INFO",
        "level",
        "target",
        "doorward::audit",
        "audit.kind",
    ] {
        assert!(!text.contains(noise), "{noise} in {text}");
    }
    let at = line["@timestamp"].as_str().expect("a timestamp");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert!(
        at.ends_with('Z') && at.len() == "2024-05-31T16:08:37.123Z".len(),
        "{at}"
    );
}

#[test]
fn numbers_stay_numbers_and_every_event_has_its_own_id() {
    let lines = audited(Selection::all(), || {
        crate::audit!(Kind::SessionEnded, by = "scim", count = 3u64);
        crate::audit!(Kind::SessionEnded, by = "scim", count = 3u64);
    });
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["doorward"]["count"], 3);
    assert_eq!(lines[0]["doorward"]["by"], "scim");
    let ids: Vec<&str> = lines.iter().map(|l| l["event"]["id"].as_str().expect("id")).collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), 36, "{}", ids[0]);
    assert_eq!(&ids[0][14..15], "4", "a version-4 id: {}", ids[0]);
}

#[test]
fn only_the_selected_kinds_are_written() {
    let selection = Selection::parse(["login-failed", "config-refused"]).expect("names");
    let lines = audited(selection, || {
        crate::audit!(Kind::LoginSucceeded, user = "a");
        crate::audit!(Kind::LoginFailed, reason = "r");
        crate::audit!(Kind::AccessDenied, route = "app", rule = "groups");
        crate::audit!(Kind::ConfigRefused, reason = "bad toml");
    });
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["event"]["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["login-failed", "config-refused"]);
}

#[test]
fn a_selection_is_all_or_known_names() {
    let all = Selection::parse(["all"]).expect("all");
    assert!(Kind::ALL.iter().all(|k| all.allows(k.as_str())));
    assert!(all.allows("a-future-kind"));
    let some = Selection::parse(["weakened"]).expect("one");
    assert!(some.allows("weakened") && !some.allows("logout") && !some.allows("a-future-kind"));
    let problems = Selection::parse(["logout", "login", "weakend"]).expect_err("unknown names");
    let at: Vec<usize> = problems.iter().map(|(i, _)| *i).collect();
    assert_eq!(at, [1, 2]);
    assert!(
        problems[0].1.starts_with("`login` is not an audit event"),
        "{problems:?}"
    );
    assert!(Selection::parse([]).is_err(), "an empty list selects nothing");
}
