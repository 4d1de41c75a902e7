//! Traces on the request path: what the root (server) span of a request
//! carries, whose `traceparent` it continues, and the `traceparent` the
//! upstream is given.
//!
//! With `[traces]` off nothing here runs past one atomic load (`on`), and
//! the child spans (target [`TARGET`]) are disabled at their callsites by
//! every layer (see `telemetry::subscriber`), so each costs one cached
//! interest check. Attributes follow OpenTelemetry's HTTP semantic
//! conventions; they are set through the OpenTelemetry extension rather
//! than as span fields, so the log's JSON (which prints the current
//! span's fields) reads the same with traces on or off. Never an
//! attribute from a cookie, a token, `Authorization` or a query string.

use std::net::IpAddr;
use std::sync::OnceLock;

use http::header::HeaderName;
use http::{HeaderMap, Method, StatusCode};
use ipnet::IpNet;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of doorward's trace-only spans (recognising the caller, the
/// store, identity providers, SCIM, signals, the upstream). The ordinary
/// log never shows them; only the OpenTelemetry layer takes them.
pub const TARGET: &str = "doorward::trace";

/// W3C trace context headers (what the upstream gets, what a trusted
/// caller may send).
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// What the request path needs once traces are on; set once at start.
struct State {
    /// Peers whose `traceparent` is continued.
    trusted: Vec<IpNet>,
    propagator: TraceContextPropagator,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Turns the request path's tracing on (once: `[traces]` is restart-only).
pub(super) fn switch_on(trusted: Vec<IpNet>) {
    let _ = STATE.set(State {
        trusted,
        propagator: TraceContextPropagator::new(),
    });
    // IdP calls: the same propagation and client-span outcomes as the
    // upstream's.
    crate::idp_http::trace_with(crate::idp_http::SpanHooks {
        inject,
        answered: client_answered,
        failed: client_failed,
    });
}

/// Whether traces are on in this process.
#[inline]
pub fn on() -> bool {
    STATE.get().is_some()
}

/// Whether `peer`'s `traceparent` is continued.
fn trusted(trusted: &[IpNet], peer: IpAddr) -> bool {
    // A v4 peer reached over a dual-stack socket arrives as ::ffff:a.b.c.d.
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&peer))
}

/// What the root span of a request is told at its start.
pub struct RequestStart<'a> {
    pub method: &'a Method,
    /// The path as asked (never the query: it may carry codes).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The connection's peer: whose `traceparent` may be trusted.
    pub peer: IpAddr,
    /// The client, behind trusted proxies (X-Forwarded-For), else the peer.
    pub client: IpAddr,
    pub request_id: &'a str,
}

/// Makes `span` (the request's, not yet entered) the server span: parent
/// from a trusted peer's `traceparent`, else a trace of its own, and the
/// request's attributes. Nothing when traces are off.
pub fn start_request(span: &Span, start: &RequestStart<'_>) {
    let Some(state) = STATE.get() else { return };
    if trusted(&state.trusted, start.peer) {
        let parent = state.propagator.extract(&HeaderExtractor(start.headers));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    span.set_attribute("http.request.method", start.method.as_str().to_string());
    span.set_attribute("url.path", start.path.to_string());
    span.set_attribute("client.address", start.client.to_string());
    span.set_attribute("network.peer.address", start.peer.to_string());
    span.set_attribute("doorward.request_id", start.request_id.to_string());
}

/// The route the current request matched (`http.route`).
pub fn route(name: &str) {
    if on() {
        Span::current().set_attribute("http.route", name.to_string());
    }
}

/// The status `span` answered with; a 5xx marks it an error.
pub fn finish(span: &Span, status: StatusCode) {
    if on() {
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.set_status(Status::error(status.as_str().to_string()));
        }
    }
}

/// A client span (the upstream, the IdP) answered with `status`: a 4xx or
/// 5xx marks it an error, as OpenTelemetry's HTTP conventions ask of a
/// client (a server span leaves 4xx unset: see [`finish`]).
pub fn client_answered(span: &Span, status: StatusCode) {
    if on() && (status.is_client_error() || status.is_server_error()) {
        span.set_status(Status::error(status.as_str().to_string()));
    }
}

/// A client span whose call got no answer: an error, `error.type` says why
/// (the metrics' names: `connect`, `timeout`, ...).
pub fn client_failed(span: &Span, why: &'static str) {
    if on() {
        span.set_attribute("error.type", why);
        span.set_status(Status::error(why));
    }
}

/// Puts `span`'s context into `headers` as `traceparent` (and
/// `tracestate`), replacing whatever the caller sent: the upstream sees
/// doorward's span as its parent. Nothing when traces are off (the
/// caller's headers then pass as any other).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    let Some(state) = STATE.get() else { return };
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
    state
        .propagator
        .inject_context(&span.context(), &mut HeaderInjector(headers));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn only_listed_peers_are_trusted() {
        let list = nets(&["10.0.0.0/8", "::1/128"]);
        assert!(trusted(&list, "10.1.2.3".parse().unwrap()));
        assert!(trusted(&list, "::1".parse().unwrap()));
        assert!(!trusted(&list, "11.1.2.3".parse().unwrap()));
        assert!(!trusted(&list, "127.0.0.1".parse().unwrap()));
        assert!(!trusted(&[], "10.1.2.3".parse().unwrap()), "nobody by default");
    }

    #[test]
    fn a_v4_peer_on_a_dual_stack_socket_is_read_as_v4() {
        let list = nets(&["192.0.2.0/24"]);
        assert!(trusted(&list, "::ffff:192.0.2.7".parse().unwrap()));
        assert!(!trusted(&list, "::ffff:198.51.100.7".parse().unwrap()));
    }
}
