//! `[traces]`: OpenTelemetry traces exported over OTLP/HTTP (protobuf),
//! off by default: where they go, how many are kept, which callers'
//! `traceparent` is believed, and the collector's own headers.
//!
//! Read once at start (the tracing layer is installed with the log), so a
//! reload names a change here as waiting for a restart.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use serde::Deserialize;

use super::issues::{absolute_http_url, is_loopback, Issues, KeyPath, Seg};
use super::units::SecretSource;
use super::Config;
use Seg::{Key, Name};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Off: no exporter and no tracing layer; the trace spans cost one
    /// cached-interest check each.
    pub enabled: bool,
    /// The collector's OTLP/HTTP traces URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (used as written: no path added).
    pub endpoint: Option<String>,
    /// The share of new traces kept, 0.0 to 1.0. Parent-based: a trusted
    /// caller's sampled `traceparent` is always followed, an unsampled one
    /// never.
    pub sample_ratio: f64,
    /// `service.name` of every span.
    pub service_name: String,
    /// Peers whose `traceparent`/`tracestate` are taken as the parent;
    /// anyone else's request starts a trace of its own. Empty: nobody's.
    pub trust_traceparent_from: Vec<IpNet>,
    /// Headers sent to the collector (an API key, say); values are secrets
    /// (`{ env = "..." }`, `{ file = "..." }` or inline), never logged.
    pub headers: BTreeMap<String, SecretSource>,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            sample_ratio: 1.0,
            service_name: "doorward".into(),
            trust_traceparent_from: Vec::new(),
            headers: BTreeMap::new(),
        }
    }
}

/// Checks on `[traces]` past its types, each at its key. Headers are
/// checked (and their secrets resolved) even while traces are off, so a
/// mistake shows before the day they are turned on.
pub(super) fn check(config: &Config, issues: &mut Issues) {
    let traces = &config.traces;
    let at = |key: &'static str| KeyPath::of(&[Key("traces"), Key(key)]);
    match (&traces.endpoint, traces.enabled) {
        (None, true) => issues.push((
            at("endpoint"),
            "traces are enabled but no collector endpoint is set (e.g. \"http://127.0.0.1:4318/v1/traces\")".into(),
        )),
        (Some(endpoint), _) => match absolute_http_url(endpoint) {
            Err(why) => issues.push((at("endpoint"), why)),
            // Either would carry credentials into every message that
            // names the endpoint.
            Ok(uri) if uri.query().is_some() => issues.push((
                at("endpoint"),
                "the endpoint takes no query (put credentials in `headers`)".into(),
            )),
            Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => issues.push((
                at("endpoint"),
                "the endpoint takes no user or password (put credentials in `headers`)".into(),
            )),
            Ok(uri) if uri.scheme_str() == Some("http") && !uri.host().is_some_and(is_loopback) => issues.push((
                at("endpoint"),
                "plain http to a collector off loopback would carry spans (and `headers`) in the clear: use https://"
                    .into(),
            )),
            Ok(_) => {}
        },
        (None, false) => {}
    }
    if !(0.0..=1.0).contains(&traces.sample_ratio) {
        issues.push((
            at("sample_ratio"),
            format!("{} is not between 0.0 and 1.0", traces.sample_ratio),
        ));
    }
    if traces.service_name.trim().is_empty() {
        issues.push((at("service_name"), "the service name is empty".into()));
    }
    for (name, value) in &traces.headers {
        let here = KeyPath::of(&[Key("traces"), Key("headers"), Name(name.clone())]);
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push((here, format!("`{name}` is not an HTTP header name")));
            continue;
        }
        match value.resolve() {
            Err(e) => issues.push((here, e.to_string())),
            // The value is not shown: it is a secret.
            Ok(secret) if HeaderValue::from_str(secret.expose()).is_err() => issues.push((
                here,
                "the value is not a valid HTTP header value (control characters?)".into(),
            )),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::{has_problem as has, problems_with as problems, PASSING_BASE};

    #[test]
    fn traces_are_off_by_default_with_every_ratio_and_nobody_trusted() {
        let config = crate::config::parse_str(PASSING_BASE, "doorward.toml").expect("parses");
        assert!(!config.traces.enabled);
        assert_eq!(config.traces.endpoint, None);
        assert_eq!(config.traces.sample_ratio, 1.0);
        assert_eq!(config.traces.service_name, "doorward");
        assert!(config.traces.trust_traceparent_from.is_empty());
    }

    #[test]
    fn a_full_section_parses_and_passes() {
        let text = "[traces]\nenabled = true\nendpoint = \"https://otel.example.com/v1/traces\"\n\
            sample_ratio = 0.25\nservice_name = \"edge\"\ntrust_traceparent_from = [\"10.0.0.0/8\"]\n\
            headers = { \"x-api-key\" = \"k-123\" }\n";
        let p = problems(text);
        assert!(!p.iter().any(|m| m.starts_with("traces")), "{p:?}");
        let config = crate::config::parse_str(&format!("{PASSING_BASE}{text}"), "doorward.toml").expect("parses");
        assert_eq!(config.traces.sample_ratio, 0.25);
        assert_eq!(
            config.traces.trust_traceparent_from,
            vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn each_mistake_is_named_at_its_key() {
        let p = problems("[traces]\nenabled = true\n");
        assert!(
            has(&p, "traces.endpoint: traces are enabled but no collector endpoint"),
            "{p:?}"
        );
        let p = problems("[traces]\nendpoint = \"127.0.0.1:4318\"\n");
        assert!(
            has(&p, "traces.endpoint: `127.0.0.1:4318` must be an absolute"),
            "{p:?}"
        );
        let p = problems("[traces]\nendpoint = \"http://collector.example.com:4318/v1/traces\"\n");
        assert!(
            has(&p, "traces.endpoint: plain http to a collector off loopback"),
            "{p:?}"
        );
        let p = problems("[traces]\nendpoint = \"https://c.example.com/v1/traces?key=1\"\n");
        assert!(has(&p, "traces.endpoint: the endpoint takes no query"), "{p:?}");
        let p = problems("[traces]\nendpoint = \"https://u:hunter2@c.example.com/v1/traces\"\n");
        assert!(
            has(&p, "traces.endpoint: the endpoint takes no user or password"),
            "{p:?}"
        );
        let p = problems("[traces]\nsample_ratio = 1.5\n");
        assert!(has(&p, "traces.sample_ratio: 1.5 is not between 0.0 and 1.0"), "{p:?}");
        let p = problems("[traces]\nservice_name = \" \"\n");
        assert!(has(&p, "traces.service_name: the service name is empty"), "{p:?}");
        let p = problems("[traces]\ntrust_traceparent_from = [\"10.0.0.0/33\"]\n");
        assert!(has(&p, "traces.trust_traceparent_from"), "{p:?}");
        let p = problems("[traces]\nsampel_ratio = 0.5\n");
        assert!(has(&p, "traces.sampel_ratio: unknown field"), "{p:?}");
    }

    #[test]
    fn a_bad_header_is_named_and_its_value_never_shown() {
        let p = problems("[traces]\nheaders = { \"bad name\" = \"v\" }\n");
        assert!(
            has(&p, "traces.headers.bad name: `bad name` is not an HTTP header name"),
            "{p:?}"
        );
        let p = problems("[traces]\nheaders = { \"x-api-key\" = \"line\\nbreak-hunter2\" }\n");
        assert!(
            has(
                &p,
                "traces.headers.x-api-key: the value is not a valid HTTP header value"
            ),
            "{p:?}"
        );
        assert!(!p.iter().any(|m| m.contains("hunter2")), "{p:?}");
        let p = problems("[traces]\nheaders = { \"x-api-key\" = { env = \"DOORWARD_TEST_UNSET_OTEL_KEY\" } }\n");
        assert!(has(&p, "traces.headers.x-api-key: environment variable"), "{p:?}");
    }

    #[test]
    fn header_values_are_redacted_in_debug() {
        let text = "[traces]\nheaders = { \"x-api-key\" = \"hunter2-otel\" }\n";
        let config = crate::config::parse_str(&format!("{PASSING_BASE}{text}"), "doorward.toml").expect("parses");
        let shown = format!("{:?}", config.traces);
        assert!(
            shown.contains("x-api-key") && !shown.contains("hunter2-otel"),
            "{shown}"
        );
    }
}
