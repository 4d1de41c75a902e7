//! The Shared Signals receiver (OpenID SSF 1.0, CAEP 1.0, RISC): security
//! events an identity provider pushes or lets doorward poll end or change
//! its users' sessions on every replica within a second.
//!
//! A SET is checked in [`set`] (signature, `typ`, `iss`, `aud`, `iat`,
//! `jti`, exactly one event; pure), its subject and event typed in
//! [`subject`] and [`events`], taken once across replicas and applied by
//! the [`receiver`] through the directory handle ([`effects`]), the same
//! path SCIM and operator revocation use: this module knows neither auth
//! nor sessions. Delivery is [`push`] (RFC 8935) or [`poll`] (RFC 8936);
//! the transmitter's metadata and keys are kept fresh by the provider
//! layer's refresh loop ([`transmitter`]); its stream is managed in
//! [`stream`].

pub mod effects;
pub mod events;
pub mod poll;
pub mod push;
pub mod receiver;
pub mod set;
pub mod stream;
pub mod subject;
pub mod targets;
#[cfg(test)]
mod tests;
pub mod transmitter;

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use crate::config::signals::Delivery;
use crate::config::Config;
use crate::directory::DirectoryHandle;
use crate::idp_http::IdpHttp;
use crate::metrics::SignalMetrics;
use crate::providers::refresh::Refresh;
use crate::respond::body::{BodyLimits, ClientBody};
use crate::respond::Reply;
use receiver::Receiver;
use transmitter::{Transmitter, TransmitterError};

/// How long a call to a transmitter may take.
const TRANSMITTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Every configured transmitter's receiver (rebuilt by a reload).
pub struct Signals {
    receivers: Vec<Arc<Receiver>>,
    limits: BodyLimits,
    /// Pushes arrive on the admin listener instead of the main one.
    on_admin_listener: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignalsSetupError {
    #[error("signals `{0}`: {1}")]
    Tls(String, crate::tls::TlsError),
}

impl Signals {
    /// The receivers of `config`, when it has `[[signals]]` and sessions to
    /// act on (a directory handle from auth).
    pub fn from_config(
        config: &Config,
        directory: Option<DirectoryHandle>,
        metrics: SignalMetrics,
        idp_metrics: crate::metrics::IdpMetrics,
    ) -> Result<Option<Self>, SignalsSetupError> {
        let Some(directory) = directory.filter(|_| !config.signals.is_empty()) else {
            return Ok(None);
        };
        let public_url = config
            .server
            .public_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let on_admin_listener = config.admin.listen.is_some();
        let mut receivers = Vec::new();
        for signals in &config.signals {
            let tls = crate::tls::client_config(None).map_err(|e| SignalsSetupError::Tls(signals.name.clone(), e))?;
            let http = IdpHttp::new(tls, TRANSMITTER_TIMEOUT).observed(idp_metrics.clone(), &signals.name);
            let transmitter = Arc::new(Transmitter::new(
                &signals.issuer,
                http,
                signals.insecure_allow_http_issuer,
            ));
            let push_url = signals
                .push_url
                .clone()
                .unwrap_or_else(|| format!("{public_url}{}/ssf/{}", config.server.internal_prefix, signals.name));
            receivers.push(Arc::new(Receiver::new(
                signals,
                signals.audience_or(public_url).to_string(),
                push_url,
                transmitter,
                directory.clone(),
                metrics.clone(),
            )));
        }
        Ok(Some(Self {
            receivers,
            limits: BodyLimits {
                max: Some(push::MAX_SET),
                idle: config.server.idle_timeout.0,
                deadline: config.server.upload_timeout.0,
            },
            on_admin_listener,
        }))
    }

    pub fn receiver(&self, name: &str) -> Option<&Arc<Receiver>> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// Whether pushes are taken on the admin listener (else the main one).
    pub fn on_admin_listener(&self) -> bool {
        self.on_admin_listener
    }

    /// Starts each receiver's metadata refresh (which also manages its
    /// stream) and, for polling ones, the poll loop. Each ends with its
    /// receiver.
    pub fn start(&self) {
        for receiver in &self.receivers {
            crate::providers::refresh::spawn(receiver);
            if receiver.delivery == Delivery::Poll {
                poll::spawn(receiver);
            }
        }
    }

    /// A push to `/ssf/{name}`; `rest` is the part after `/ssf/`.
    pub async fn push(&self, name: &str, parts: &Parts, body: impl ClientBody) -> Option<Reply> {
        let receiver = self.receiver(name)?;
        Some(push::handle(receiver, parts, body, self.limits).await)
    }

    /// Lines for the readiness report: each stream's state (a transmitter
    /// down does not fail readiness: sessions keep working without it).
    pub fn readiness(&self) -> String {
        let mut report = String::new();
        for receiver in &self.receivers {
            let stream = receiver.stream_state();
            let metadata = if receiver.transmitter.metadata().is_some() {
                "metadata loaded"
            } else {
                "metadata not fetched yet"
            };
            let status = stream.status.as_deref().unwrap_or("unknown");
            let verified = if stream.verified { ", verified" } else { "" };
            let problem = stream.problem.map(|p| format!(", {p}")).unwrap_or_default();
            report.push_str(&format!(
                "signals {}: {metadata}, stream {status}{verified}{problem}\n",
                receiver.name
            ));
        }
        report
    }
}

/// The transmitter's metadata and keys ride the provider layer's one
/// refresh loop; a managed stream is brought up to date after each read.
impl Refresh for Receiver {
    type Error = TransmitterError;
    const FAILED: &'static str =
        "shared-signals transmitter metadata could not be refreshed; keeping the last good copy";

    fn provider_name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.metadata_refresh
    }

    async fn refresh_once(&self) -> Result<Option<Duration>, TransmitterError> {
        let max_age = self.transmitter.refresh().await?;
        let managed = if self.manage_stream {
            self.manage_stream().await
        } else {
            self.read_status().await
        };
        if let Err(e) = managed {
            tracing::warn!(transmitter = %self.name, error = %e, "the shared-signals stream could not be set up");
            self.stream_problem(Some(e.to_string()));
        }
        Ok(max_age)
    }
}
