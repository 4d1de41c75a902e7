//! doorward's own operational endpoints under the internal prefix (default
//! `/_doorward`): liveness, readiness, metrics, the assertion keys, and the
//! stylesheet and logo of doorward's pages. The
//! separate metrics listener, when configured, serves these at its root
//! (`/metrics`, `/healthz`, `/readyz`) and nothing else.

use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Method, StatusCode};

use super::errors::ProxyError;
use super::{ConnInfo, Gateway, Listener};
use crate::respond::{full, Reply};
use crate::store::SessionStore;

/// Whether doorward can serve: set once the listener is up (and, as
/// features arrive, the store is open and IdP metadata fetched).
#[derive(Debug, Default)]
pub struct Readiness {
    listening: AtomicBool,
}

impl Readiness {
    pub fn set_listening(&self) {
        self.listening.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

/// Answers `rest`, the path after the internal prefix (`""` or `/name...`).
pub async fn respond(gateway: &Gateway, method: &Method, rest: &str, conn: &ConnInfo) -> Result<Reply, ProxyError> {
    let endpoint = match rest {
        "/healthz" => Endpoint::Health,
        "/readyz" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        "/jwks.json" if conn.listener == Listener::Main => Endpoint::Jwks,
        "/ui/style.css" if conn.listener == Listener::Main => Endpoint::Style,
        "/ui/logo" if conn.listener == Listener::Main && gateway.pages.theme().logo().is_some() => Endpoint::Logo,
        _ => return Err(ProxyError::NotFound),
    };
    if method != Method::GET && method != Method::HEAD {
        return Err(ProxyError::MethodNotAllowed);
    }
    Ok(match endpoint {
        Endpoint::Health => full(StatusCode::OK, "ok\n", "text/plain; charset=utf-8"),
        Endpoint::Ready => {
            let (ready, report) = readiness(gateway).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            full(status, report, "text/plain; charset=utf-8")
        }
        Endpoint::Metrics => {
            // Metrics name routes and counts logins: only the metrics
            // listener, or allowed addresses on the main one, may read them.
            let peer = conn.peer.ip().to_canonical();
            if conn.listener != Listener::Metrics
                && (gateway.metrics_elsewhere || !gateway.metrics_allow.iter().any(|n| n.contains(&peer)))
            {
                return Err(ProxyError::NotPermitted);
            }
            if let Some(auth) = gateway.auth() {
                gateway
                    .metrics()
                    .auth()
                    .set_sessions_cached(auth.sessions.cached_count().await);
            }
            full(
                StatusCode::OK,
                gateway.metrics().encode(),
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
        }
        Endpoint::Jwks => full(
            StatusCode::OK,
            gateway.signer.jwks().to_string(),
            "application/jwk-set+json",
        ),
        Endpoint::Style => asset(gateway.pages.theme().style(), "text/css; charset=utf-8"),
        Endpoint::Logo => match gateway.pages.theme().logo() {
            Some(logo) => asset(logo.bytes.clone(), logo.content_type),
            None => return Err(ProxyError::NotFound),
        },
    })
}

/// Ready = listening and the store answers. Identity providers are
/// reported but do not fail readiness: sessions keep working while an IdP
/// is down, and taking every replica out of service would end them too.
async fn readiness(gateway: &Gateway) -> (bool, String) {
    let mut ready = gateway.readiness.is_ready();
    let mut report = format!("listening: {}\n", if ready { "ok" } else { "not yet" });
    if let Some(auth) = gateway.auth() {
        match auth.sessions.store().ping().await {
            Ok(()) if auth.sessions.reading_through() => {
                report.push_str("store: ok (revocation notices not received: every lookup reads the store)\n")
            }
            Ok(()) => report.push_str("store: ok\n"),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the store does not answer");
                report.push_str("store: unavailable\n");
                ready = false;
            }
        }
        for provider in &auth.providers {
            report.push_str(&format!("provider {}: {}\n", provider.name(), provider.status()));
        }
    }
    if let Some(signals) = &gateway.signals {
        report.push_str(&signals.readiness());
    }
    report.push_str(if ready { "ready\n" } else { "not ready\n" });
    (ready, report)
}

enum Endpoint {
    Health,
    Ready,
    Metrics,
    Jwks,
    Style,
    Logo,
}

/// The pages' stylesheet or logo: the same for everyone, so cacheable (the
/// pages link the stylesheet by its digest); an SVG logo opened on its own
/// still runs no script.
fn asset(bytes: bytes::Bytes, content_type: &'static str) -> Reply {
    let mut response = full(StatusCode::OK, bytes, content_type);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
