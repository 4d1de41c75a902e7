//! doorward's own endpoints under the internal prefix (default
//! `/_doorward`): liveness, readiness and metrics. Later features (login,
//! callbacks, JWKS) add theirs here.

use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};

use super::body::ResponseBody;
use super::errors::ProxyError;
use super::Gateway;

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
pub async fn respond(gateway: &Gateway, method: &Method, rest: &str) -> Result<Response<ResponseBody>, ProxyError> {
    let endpoint = match rest {
        "/healthz" => Endpoint::Health,
        "/readyz" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        "/jwks.json" => Endpoint::Jwks,
        _ => return Err(ProxyError::NotFound),
    };
    if method != Method::GET && method != Method::HEAD {
        return Err(ProxyError::MethodNotAllowed);
    }
    Ok(match endpoint {
        Endpoint::Health => text(StatusCode::OK, "ok\n".into(), "text/plain; charset=utf-8"),
        Endpoint::Ready => {
            let (ready, report) = readiness(gateway).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, report, "text/plain; charset=utf-8")
        }
        Endpoint::Metrics => text(
            StatusCode::OK,
            gateway.metrics().encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        Endpoint::Jwks => match &gateway.signer {
            Some(signer) => text(StatusCode::OK, signer.jwks().to_string(), "application/jwk-set+json"),
            None => return Err(ProxyError::NotFound),
        },
    })
}

/// Ready = listening and the store answers. Identity providers are
/// reported but do not fail readiness: sessions keep working while an IdP
/// is down, and taking every replica out of service would end them too.
async fn readiness(gateway: &Gateway) -> (bool, String) {
    use crate::store::SessionStore;
    let mut ready = gateway.readiness.is_ready();
    let mut report = format!("listening: {}\n", if ready { "ok" } else { "not yet" });
    if let Some(auth) = gateway.auth() {
        match auth.sessions.store().ping().await {
            Ok(()) => report.push_str("store: ok\n"),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the store does not answer");
                report.push_str("store: unavailable\n");
                ready = false;
            }
        }
        for provider in &auth.providers {
            let state = if provider.has_metadata() {
                "metadata loaded"
            } else {
                "metadata not fetched yet (logins retry)"
            };
            report.push_str(&format!("provider {}: {state}\n", provider.name));
        }
    }
    report.push_str(if ready { "ready\n" } else { "not ready\n" });
    (ready, report)
}

enum Endpoint {
    Health,
    Ready,
    Metrics,
    Jwks,
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
