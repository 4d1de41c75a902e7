//! The HTTP client doorward uses to talk to identity providers (OIDC
//! discovery, JWKS, token, userinfo; SAML metadata). It sits below every
//! protocol; the provider layer hands each provider its own. Not on the
//! request path: one connection per call, no redirects followed (an IdP
//! response must not steer doorward to another host), bounded time and
//! response size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::Instrument;

use crate::metrics::IdpMetrics;

/// Largest IdP response read (metadata, JWKS, tokens, userinfo).
const MAX_RESPONSE: usize = 1 << 20;

/// What traces do with a call's client span: put its `traceparent` on the
/// request, mark the span by the answer or by why there was none.
/// Plugged in by `crate::telemetry` when traces are on, so this client,
/// which the exporter itself uses, knows nothing of OpenTelemetry.
pub struct SpanHooks {
    pub inject: fn(&tracing::Span, &mut http::HeaderMap),
    pub answered: fn(&tracing::Span, http::StatusCode),
    pub failed: fn(&tracing::Span, &'static str),
}

static SPAN_HOOKS: std::sync::OnceLock<SpanHooks> = std::sync::OnceLock::new();

/// Sets the hooks (once: traces are restart-only).
pub fn trace_with(hooks: SpanHooks) {
    let _ = SPAN_HOOKS.set(hooks);
}

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    #[error("bad IdP URL: {0}")]
    Url(String),
    #[error("cannot reach the IdP at {host}: {source}")]
    Connect { host: String, source: std::io::Error },
    #[error("the IdP did not answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP error talking to the IdP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the IdP response was too large or broken: {0}")]
    Body(String),
}

/// How long a response may be cached, by its `Cache-Control: max-age`.
pub fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .find_map(|n| n.parse::<u64>().ok())
        })
        .map(Duration::from_secs)
}

#[derive(Clone)]
pub struct IdpHttp {
    tls: TlsConnector,
    timeout: Duration,
    observed: Option<Observed>,
    /// Each call is a client span (target `doorward::trace`); off for the
    /// traces exporter's own calls, which must not make spans to export.
    traced: bool,
}

/// Where this client's requests are counted, and under which provider.
#[derive(Clone)]
struct Observed {
    metrics: IdpMetrics,
    provider: Arc<str>,
}

impl IdpHttp {
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        Self {
            tls: TlsConnector::from(tls),
            timeout,
            observed: None,
            traced: true,
        }
    }

    /// Makes no spans (for the traces exporter).
    pub fn untraced(mut self) -> Self {
        self.traced = false;
        self
    }

    /// Counts this client's requests in `metrics` under `provider`.
    pub fn observed(mut self, metrics: IdpMetrics, provider: &str) -> Self {
        self.observed = Some(Observed {
            metrics,
            provider: provider.into(),
        });
        self
    }

    /// Sends one request to `endpoint` (`discovery`, `jwks`, `token`,
    /// `userinfo`, ... for the metrics) and reads the whole (bounded)
    /// response.
    pub async fn send(
        &self,
        endpoint: &'static str,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, IdpHttpError> {
        let started = std::time::Instant::now();
        // The path only: a query may carry codes or tokens.
        let span = match self.traced {
            true => tracing::info_span!(target: "doorward::trace", "doorward.idp",
                otel.kind = "client",
                http.request.method = %request.method(),
                server.address = request.uri().host().unwrap_or("-"),
                url.path = request.uri().path(),
                doorward.idp.endpoint = endpoint,
                doorward.idp.provider = self.observed.as_ref().map_or("-", |o| &*o.provider),
                http.response.status_code = tracing::field::Empty,
            ),
            false => tracing::Span::none(),
        };
        // The IdP continues the trace if it traces too (nothing when
        // traces are off or for the exporter's own, untraced, calls).
        let hooks = SPAN_HOOKS.get().filter(|_| self.traced);
        let mut request = request;
        if let Some(hooks) = hooks {
            (hooks.inject)(&span, request.headers_mut());
        }
        let result = tokio::time::timeout(self.timeout, self.send_inner(request))
            .instrument(span.clone())
            .await
            .map_err(|_| IdpHttpError::Timeout(self.timeout))
            .and_then(|r| r);
        if let Ok(response) = &result {
            span.record("http.response.status_code", response.status().as_u16());
        }
        if let Some(hooks) = hooks {
            match &result {
                Ok(response) => (hooks.answered)(&span, response.status()),
                Err(IdpHttpError::Timeout(_)) => (hooks.failed)(&span, "timeout"),
                Err(IdpHttpError::Connect { .. }) => (hooks.failed)(&span, "connect"),
                Err(_) => (hooks.failed)(&span, "request"),
            }
        }
        if let Some(o) = &self.observed {
            // An error is no answer or a server error; a 4xx (an expired
            // refresh token) is the IdP working as it should.
            let failed = result.as_ref().map_or(true, |r| r.status().is_server_error());
            o.metrics.observe(&o.provider, endpoint, started.elapsed(), failed);
        }
        result
    }

    async fn send_inner(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, IdpHttpError> {
        let uri = request.uri().clone();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(IdpHttpError::Url(uri.to_string())),
        };
        let host = uri
            .host()
            .ok_or_else(|| IdpHttpError::Url(uri.to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| IdpHttpError::Connect {
                host: host.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);

        let (mut parts, body) = request.into_parts();
        parts.uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| IdpHttpError::Url(uri.to_string()))?;
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&authority).map_err(|_| IdpHttpError::Url(uri.to_string()))?,
        );
        parts
            .headers
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(concat!(
                "doorward/",
                env!("CARGO_PKG_VERSION")
            )));
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));

        if https {
            let name = ServerName::try_from(host.clone()).map_err(|_| IdpHttpError::Url(uri.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| IdpHttpError::Connect { host, source })?;
            exchange(tls, request).await
        } else {
            exchange(tcp, request).await
        }
    }
}

async fn exchange<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<http::Response<Vec<u8>>, IdpHttpError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| IdpHttpError::Body(e.to_string()))?
        .to_bytes();
    driver.abort();
    Ok(http::Response::from_parts(parts, body.to_vec()))
}
