//! Prometheus metrics. Per-route handles are made once at start, so the
//! request path never looks a label set up in a shared map. Login, refresh,
//! logout and bearer counters ([`AuthMetrics`]) live in the same registry;
//! they move at most once per login or token, never per request.

use std::time::Duration;

use http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    route: String,
    kind: &'static str,
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const UPSTREAM_ERROR_KINDS: [&str; 5] = ["connect", "connect_timeout", "tls", "request", "timeout"];

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IdpLabels {
    provider: String,
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Session cache lookups that found the session (`hit`) or went to the
/// store (`miss`). Two counters made once: a lookup bumps one, with no
/// label lookup on the request path.
#[derive(Clone, Default)]
pub struct SessionCacheMetrics {
    hits: Counter,
    misses: Counter,
}

impl SessionCacheMetrics {
    pub fn hit(&self) {
        self.hits.inc();
    }

    pub fn miss(&self) {
        self.misses.inc();
    }
}

/// Store operations: how long each took and which failed, by operation
/// (`get`, `insert`, `delete_matching`, ...). Store calls happen on cache
/// misses, logins and SCIM writes, not per cached request.
#[derive(Clone)]
pub struct StoreMetrics {
    duration: Family<OperationLabel, Histogram, fn() -> Histogram>,
    errors: Family<OperationLabel, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
        }
    }
}

impl StoreMetrics {
    pub fn observe(&self, operation: &'static str, took: Duration, failed: bool) {
        let label = OperationLabel { operation };
        self.duration.get_or_create(&label).observe(took.as_secs_f64());
        if failed {
            self.errors.get_or_create(&label).inc();
        }
    }
}

/// Requests to identity providers: latency and failures (no answer, or an
/// HTTP error status), by provider and endpoint (`discovery`, `jwks`,
/// `token`, `userinfo`, `metadata` for SAML).
#[derive(Clone)]
pub struct IdpMetrics {
    duration: Family<IdpLabels, Histogram, fn() -> Histogram>,
    errors: Family<IdpLabels, Counter>,
}

impl Default for IdpMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
        }
    }
}

impl IdpMetrics {
    pub fn observe(&self, provider: &str, endpoint: &'static str, took: Duration, failed: bool) {
        let labels = IdpLabels {
            provider: provider.to_string(),
            endpoint,
        };
        self.duration.get_or_create(&labels).observe(took.as_secs_f64());
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    transmitter: String,
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransmitterLabel {
    transmitter: String,
}

/// Shared signals: each SET by transmitter, event and outcome; the delay
/// from its `iat` to its effect; whether each stream is enabled.
#[derive(Clone)]
pub struct SignalMetrics {
    events: Family<SignalLabels, Counter>,
    delay: Family<TransmitterLabel, Histogram, fn() -> Histogram>,
    stream_enabled: Family<TransmitterLabel, Gauge>,
}

impl Default for SignalMetrics {
    fn default() -> Self {
        Self {
            events: Family::default(),
            // 0.25 ms .. ~16 s: iat has one-second resolution, so the
            // low buckets show a clock ahead of the transmitter's.
            delay: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_25, 2.0, 17))),
            stream_enabled: Family::default(),
        }
    }
}

impl SignalMetrics {
    pub fn event(&self, transmitter: &str, event: &'static str, outcome: &'static str) {
        let labels = SignalLabels {
            transmitter: transmitter.to_string(),
            event,
            outcome,
        };
        self.events.get_or_create(&labels).inc();
    }

    pub fn delay(&self, transmitter: &str, seconds: f64) {
        let label = TransmitterLabel {
            transmitter: transmitter.to_string(),
        };
        self.delay.get_or_create(&label).observe(seconds.max(0.0));
    }

    /// 1 when the transmitter says the stream is enabled, 0 otherwise.
    pub fn stream_enabled(&self, transmitter: &str, enabled: bool) {
        let label = TransmitterLabel {
            transmitter: transmitter.to_string(),
        };
        self.stream_enabled.get_or_create(&label).set(i64::from(enabled));
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "signals_events",
            "Security event tokens received, by transmitter, event and outcome (applied, ignored, refused reason)",
            self.events.clone(),
        );
        registry.register(
            "signals_delivery_delay_seconds",
            "Time from a SET's iat to its effect here, by transmitter",
            self.delay.clone(),
        );
        registry.register(
            "signals_stream_enabled",
            "Whether the transmitter reports the stream enabled (1) or not (0)",
            self.stream_enabled.clone(),
        );
    }
}

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    in_flight: Gauge,
    auth: AuthMetrics,
    signals: SignalMetrics,
    config_reloads: Family<OutcomeLabel, Counter>,
}

/// What happened to logins, refreshes, back-channel logouts and bearer
/// tokens, and how many sessions are cached. Cheap to clone (shared
/// counters).
#[derive(Clone, Default)]
pub struct AuthMetrics {
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<OutcomeLabel, Counter>,
    backchannel_logouts: Family<OutcomeLabel, Counter>,
    bearer_validations: Family<OutcomeLabel, Counter>,
    sessions_cached: Gauge,
    /// Handed to the session manager, the store and the providers' HTTP
    /// clients, which the login machinery builds.
    pub session_cache: SessionCacheMetrics,
    pub store: StoreMetrics,
    pub idp: IdpMetrics,
}

impl AuthMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "logins",
            "Finished logins by provider and outcome (success, denied, failed, idp_unavailable, store_unavailable)",
            self.logins.clone(),
        );
        registry.register(
            "refreshes",
            "Token refreshes by outcome (success, ended, idp_unavailable)",
            self.refreshes.clone(),
        );
        registry.register(
            "backchannel_logouts",
            "Back-channel logout requests by outcome (accepted, refused)",
            self.backchannel_logouts.clone(),
        );
        registry.register(
            "bearer_validations",
            "Bearer tokens verified (not answered from the cache) by outcome (valid, invalid)",
            self.bearer_validations.clone(),
        );
        registry.register(
            "sessions_cached",
            "Sessions in the in-memory cache",
            self.sessions_cached.clone(),
        );
    }

    /// A finished login; `provider` is empty when the login could not be
    /// tied to one (a forged or expired state).
    pub fn login(&self, provider: &str, outcome: &'static str) {
        let provider = if provider.is_empty() { "-" } else { provider };
        self.logins
            .get_or_create(&LoginLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn refresh(&self, outcome: &'static str) {
        self.refreshes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn backchannel_logout(&self, outcome: &'static str) {
        self.backchannel_logouts.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn bearer_validation(&self, outcome: &'static str) {
        self.bearer_validations.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Set when metrics are read (the cache knows its size; nothing needs
    /// counting on the request path).
    pub fn set_sessions_cached(&self, count: u64) {
        self.sessions_cached.set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("doorward");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "requests",
            "Requests answered, by route and status class",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head, by route",
            duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures (connect, connect_timeout, tls, request, timeout), by route",
            upstream_errors.clone(),
        );
        registry.register("requests_in_flight", "Requests being handled now", in_flight.clone());
        let config_reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP or file watch) by outcome (success, refused)",
            config_reloads.clone(),
        );
        let lookups = Family::<ResultLabel, Counter>::default();
        // Both made now (they show from the first scrape) and kept as
        // handles: the family's map is not looked at per lookup.
        // One statement each: the family's read guard must be gone before
        // the next label is created (a write), or this deadlocks.
        let hits = lookups.get_or_create(&ResultLabel { result: "hit" }).clone();
        let misses = lookups.get_or_create(&ResultLabel { result: "miss" }).clone();
        let session_cache = SessionCacheMetrics { hits, misses };
        registry.register(
            "session_cache_lookups",
            "Session lookups answered from the in-memory cache (hit) or read from the store (miss)",
            lookups,
        );
        let store = StoreMetrics::default();
        registry.register(
            "store_operation_duration_seconds",
            "Time a store operation took, by operation",
            store.duration.clone(),
        );
        registry.register(
            "store_errors",
            "Store operations that failed, by operation",
            store.errors.clone(),
        );
        let idp = IdpMetrics::default();
        registry.register(
            "idp_request_duration_seconds",
            "Time a request to an identity provider took, by provider and endpoint",
            idp.duration.clone(),
        );
        registry.register(
            "idp_request_errors",
            "Requests to identity providers that failed (no answer or an HTTP error), by provider and endpoint",
            idp.errors.clone(),
        );
        let auth = AuthMetrics {
            session_cache,
            store,
            idp,
            ..AuthMetrics::default()
        };
        auth.register(&mut registry);
        let signals = SignalMetrics::default();
        signals.register(&mut registry);
        Self {
            registry,
            requests,
            duration,
            upstream_errors,
            in_flight,
            auth,
            signals,
            config_reloads,
        }
    }

    /// The shared-signals counters.
    pub fn signals(&self) -> &SignalMetrics {
        &self.signals
    }

    /// The login, refresh, logout and bearer counters.
    pub fn auth(&self) -> &AuthMetrics {
        &self.auth
    }

    /// Handles for one route (or a pseudo-route such as `_internal`).
    pub fn for_route(&self, route: &str) -> RouteMetrics {
        let class = |status: &'static str| {
            self.requests
                .get_or_create(&RequestLabels {
                    route: route.to_string(),
                    status,
                })
                .clone()
        };
        let kind = |kind: &'static str| {
            self.upstream_errors
                .get_or_create(&UpstreamErrorLabels {
                    route: route.to_string(),
                    kind,
                })
                .clone()
        };
        RouteMetrics {
            by_class: STATUS_CLASSES.map(class),
            upstream_errors: UPSTREAM_ERROR_KINDS.map(kind),
            duration: self
                .duration
                .get_or_create(&RouteLabel {
                    route: route.to_string(),
                })
                .clone(),
        }
    }

    /// A config reload that was applied (`success`) or refused (`refused`).
    pub fn config_reload(&self, outcome: &'static str) {
        self.config_reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// One route's counters, ready to bump.
#[derive(Clone)]
pub struct RouteMetrics {
    by_class: [Counter; 5],
    upstream_errors: [Counter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    pub fn observe(&self, status: StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class].inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn upstream_error(&self, kind: &str) {
        if let Some(i) = UPSTREAM_ERROR_KINDS.iter().position(|k| *k == kind) {
            self.upstream_errors[i].inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_handles_feed_the_exposition() {
        let metrics = Metrics::new();
        let route = metrics.for_route("grafana");
        route.observe(StatusCode::OK, Duration::from_millis(3));
        route.observe(StatusCode::BAD_GATEWAY, Duration::from_millis(1));
        route.upstream_error("connect");
        let text = metrics.encode();
        assert!(
            text.contains(r#"doorward_requests_total{route="grafana",status="2xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"doorward_requests_total{route="grafana",status="5xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"doorward_upstream_errors_total{route="grafana",kind="connect"} 1"#),
            "{text}"
        );
        assert!(text.contains("doorward_request_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn auth_counters_feed_the_exposition() {
        let metrics = Metrics::new();
        let auth = metrics.auth().clone();
        auth.login("okta", "success");
        auth.login("okta", "success");
        auth.login("", "failed");
        auth.refresh("ended");
        auth.backchannel_logout("accepted");
        auth.bearer_validation("invalid");
        auth.set_sessions_cached(7);
        let text = metrics.encode();
        for line in [
            r#"doorward_logins_total{provider="okta",outcome="success"} 2"#,
            r#"doorward_logins_total{provider="-",outcome="failed"} 1"#,
            r#"doorward_refreshes_total{outcome="ended"} 1"#,
            r#"doorward_backchannel_logouts_total{outcome="accepted"} 1"#,
            r#"doorward_bearer_validations_total{outcome="invalid"} 1"#,
            "doorward_sessions_cached 7",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
    }
}
