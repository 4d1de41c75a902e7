//! Sending spans to the collector: OTLP over HTTP (protobuf), batched,
//! sampled parent-based, flushed when doorward stops.
//!
//! The exporter's HTTP client is doorward's IdP client (bounded time and
//! response, no redirects, rustls), so no second HTTP stack (reqwest,
//! tonic) comes into the build. The batch processor runs on a thread of
//! its own; each export is sent on the tokio runtime, through the handle
//! given at start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

use crate::idp_http::IdpHttp;
use crate::secret::SecretString;

/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// `[traces]` as the exporter needs it (converted from the config at start).
pub struct TraceSettings {
    /// The collector's OTLP/HTTP traces URL, used as written.
    pub endpoint: String,
    /// Share of new traces kept (0.0 to 1.0); a parent's decision wins.
    pub sample_ratio: f64,
    pub service_name: String,
    /// Peers whose `traceparent` is continued.
    pub trust_traceparent_from: Vec<IpNet>,
    /// Sent with every export; the values never print.
    pub headers: Vec<(HeaderName, SecretString)>,
    /// TLS for an https collector.
    pub tls: Arc<rustls::ClientConfig>,
}

/// The running exporter; [`Traces::shutdown`] sends what is still queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Flushes the queued spans and stops the exporter. Call from outside
    /// the runtime's workers (it blocks while the runtime sends).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(EXPORT_TIMEOUT) {
            eprintln!("traces: the last spans were not all sent: {e}");
        }
    }
}

/// Builds the exporter and the tracer the OpenTelemetry layer writes to.
pub(super) fn start(settings: TraceSettings, runtime: Handle) -> Result<(Traces, SdkTracer), String> {
    let client = CollectorClient {
        http: IdpHttp::new(Arc::clone(&settings.tls), EXPORT_TIMEOUT).untraced(),
        headers: settings.headers,
        runtime,
        failing: AtomicBool::new(false),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot start the traces exporter: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("doorward");
    super::traces::switch_on(settings.trust_traceparent_from);
    Ok((Traces { provider }, tracer))
}

/// The exporter's HTTP client: the IdP client, run on the tokio runtime.
struct CollectorClient {
    http: IdpHttp,
    headers: Vec<(HeaderName, SecretString)>,
    runtime: Handle,
    /// Whether the last export failed: a collector that is down is logged
    /// once when it goes and once when it is back, not every batch.
    failing: AtomicBool,
}

impl CollectorClient {
    fn report(&self, failure: Option<String>) {
        match failure {
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("the traces collector takes spans again");
            }
            Some(why) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(error = %why, "the traces collector did not take a batch of spans (dropped)");
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for CollectorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: names only.
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("CollectorClient").field("headers", &names).finish()
    }
}

#[async_trait]
impl HttpClient for CollectorClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (mut parts, body) = request.into_parts();
        for (name, value) in &self.headers {
            // Checked by `doorward check`; a value that fails here is left out.
            if let Ok(mut value) = HeaderValue::from_str(value.expose()) {
                value.set_sensitive(true);
                parts.headers.insert(name.clone(), value);
            }
        }
        let request = Request::from_parts(parts, body.to_vec());
        let http = self.http.clone();
        // The batch processor's thread is not a runtime worker: the
        // request runs on the runtime and this only waits for it.
        let sent = self
            .runtime
            .spawn(async move { http.send("otlp", request).await })
            .await?;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.report(Some(e.to_string()));
                return Err(e.into());
            }
        };
        match response.status().is_success() {
            true => self.report(None),
            false => self.report(Some(format!("it answered {}", response.status()))),
        }
        let (parts, body) = response.into_parts();
        Ok(Response::from_parts(parts, Bytes::from(body)))
    }
}
