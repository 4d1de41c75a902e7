//! One transmitter's receiver: a SET, however it arrived (pushed or
//! polled), is validated against the transmitter's keys and rules, taken
//! once across restarts and replicas (its `jti` in the store), and its
//! effect applied through the directory handle. Every outcome is counted
//! and logged with its reason, never with the token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::core::CoreJwsSigningAlgorithm;

use super::effects::{self, Effect, EffectError, Scope};
use super::set::{validate, SecurityEvent, SetError, SetRules};
use super::transmitter::Transmitter;
use crate::config::signals::{Delivery, SignalsConfig};
use crate::directory::DirectoryHandle;
use crate::metrics::SignalMetrics;
use crate::secret::SecretString;
use crate::store::signals::SignalStore;
use crate::store::{SessionStore, StoreError};

/// Why a SET was not taken. The RFC 8935 error code says which kind.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(#[from] SetError),
    #[error("the SET `{0}` was received before (replayed jti)")]
    Replayed(String),
    #[error("the store could not record the SET: {0}")]
    Store(#[from] StoreError),
    #[error("the event could not be applied: {0}")]
    Effect(#[from] EffectError),
}

impl Refused {
    /// The `err` of RFC 8935 §2.4 (and RFC 8936 `setErrs`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code(),
            Self::Replayed(_) => "invalid_request",
            // Not the transmitter's fault: it should send again.
            Self::Store(_) | Self::Effect(_) => "temporarily_unavailable",
        }
    }

    /// Whether the transmitter should deliver the SET again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Effect(_))
    }

    /// A short label for the metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code(),
            Self::Replayed(_) => "replayed",
            Self::Store(_) | Self::Effect(_) => "failed",
        }
    }
}

/// What doorward knows of its stream.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    pub stream_id: Option<String>,
    /// `enabled`, `paused` or `disabled`, as the transmitter last said.
    pub status: Option<String>,
    /// The poll endpoint the stream configuration named.
    pub poll_url: Option<String>,
    /// The `state` of the verification asked for and not yet answered.
    pub awaiting_verification: Option<String>,
    pub verified: bool,
    /// The last failure talking to the transmitter, for readiness.
    pub problem: Option<String>,
}

pub struct Receiver {
    pub name: String,
    /// The `[[provider]]` whose users the subjects are.
    pub provider: String,
    pub audience: String,
    pub delivery: Delivery,
    pub transmitter: Arc<Transmitter>,
    pub(super) push_token: Option<SecretString>,
    pub(super) transmitter_token: Option<SecretString>,
    pub(super) push_url: String,
    pub(super) poll_url: Option<String>,
    pub(super) poll_interval: Duration,
    pub(super) manage_stream: bool,
    /// Full URIs of the events requested from the transmitter.
    pub(super) events_requested: Vec<&'static str>,
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    max_age: i64,
    skew: i64,
    end_on_credential_change: bool,
    pub(super) directory: DirectoryHandle,
    pub(super) metrics: SignalMetrics,
    pub(super) stream: Mutex<StreamState>,
    pub(super) metadata_refresh: Duration,
}

/// What `receive` did with an accepted SET.
#[derive(Debug)]
pub struct Received {
    pub jti: String,
    pub effect: Effect,
}

impl Receiver {
    pub fn new(
        config: &SignalsConfig,
        audience: String,
        push_url: String,
        transmitter: Arc<Transmitter>,
        directory: DirectoryHandle,
        metrics: SignalMetrics,
    ) -> Self {
        let algorithms = config
            .algorithms
            .iter()
            .filter_map(|a| serde_json::from_value(serde_json::Value::String(a.clone())).ok())
            .collect();
        let events_requested = if config.events.is_empty() {
            crate::config::signals::EVENT_TYPES
                .iter()
                .map(|(_, uri)| *uri)
                .collect()
        } else {
            config
                .events
                .iter()
                .filter_map(|e| crate::config::signals::event_uri(e))
                .collect()
        };
        Self {
            name: config.name.clone(),
            provider: config.provider.clone(),
            audience,
            delivery: config.delivery,
            transmitter,
            push_token: config.push_token.as_ref().and_then(|s| s.resolve().ok()),
            transmitter_token: config.transmitter_token.as_ref().and_then(|s| s.resolve().ok()),
            push_url,
            poll_url: config.poll_url.clone(),
            poll_interval: config.poll_interval.0,
            manage_stream: config.manage_stream,
            events_requested,
            algorithms,
            max_age: i64::try_from(config.max_age.0.as_secs()).unwrap_or(i64::MAX / 4),
            skew: i64::try_from(config.clock_skew.0.as_secs()).unwrap_or(60),
            end_on_credential_change: config.end_sessions_on_credential_change,
            directory,
            metrics,
            stream: Mutex::new(StreamState::default()),
            metadata_refresh: config.metadata_refresh.0,
        }
    }

    /// The replay markers' scope in the store.
    fn once_scope(&self) -> String {
        format!("ssf:{}", self.name)
    }

    /// Validates, takes once and applies one SET.
    pub async fn receive(&self, token: &str) -> Result<Received, Refused> {
        let result = self.take(token).await;
        if let Err(refused) = &result {
            tracing::warn!(transmitter = %self.name, code = refused.code(), reason = %refused, "security event refused");
            self.metrics.event(&self.name, "unknown", refused.label());
        }
        result
    }

    async fn take(&self, token: &str) -> Result<Received, Refused> {
        let set = self.validated(token).await?;
        let store = self.directory.store();
        let scope = self.once_scope();
        let keep_until = set.iat.saturating_add(self.max_age).saturating_add(self.skew);
        if !store.remember_once(&scope, &set.jti, keep_until).await? {
            return Err(Refused::Replayed(set.jti));
        }
        match self.apply(&set).await {
            Ok(effect) => {
                // iat has whole seconds; the wall clock's fraction keeps
                // the histogram from reading every fast delivery as 0.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.metrics.delay(&self.name, now - set.iat as f64);
                self.metrics.event(
                    &self.name,
                    set.event.name(),
                    if matches!(effect, Effect::Applied { .. }) {
                        "applied"
                    } else {
                        "ignored"
                    },
                );
                log_effect(&self.name, &set, &effect);
                Ok(Received { jti: set.jti, effect })
            }
            Err(e) => {
                // Not done: let the transmitter's retry through.
                if let Err(forget) = store.forget_once(&scope, &set.jti).await {
                    tracing::error!(transmitter = %self.name, jti = %set.jti, error = %forget, "could not take back a failed SET's jti");
                }
                Err(e.into())
            }
        }
    }

    /// The SET checked against the keys, refetched once on an unknown key.
    async fn validated(&self, token: &str) -> Result<SecurityEvent, SetError> {
        let rules = SetRules {
            issuer: &self.transmitter.issuer,
            audience: &self.audience,
            algorithms: &self.algorithms,
            now: self.directory.now(),
            skew: self.skew,
            max_age: self.max_age,
        };
        match validate(token, &self.transmitter.keys(), &rules) {
            Err(e) if e.unknown_key() && self.transmitter.refetch_keys().await => {
                validate(token, &self.transmitter.keys(), &rules)
            }
            other => other,
        }
    }

    async fn apply(&self, set: &SecurityEvent) -> Result<Effect, EffectError> {
        if let Some(effect) = self.stream_event(set) {
            return Ok(effect);
        }
        let scope = Scope {
            provider: &self.provider,
            directory: &self.directory,
            skew: self.skew,
            end_on_credential_change: self.end_on_credential_change,
        };
        effects::apply(&scope, set).await
    }
}

fn log_effect(transmitter: &str, set: &SecurityEvent, effect: &Effect) {
    match effect {
        Effect::Applied { ended, changed } => {
            tracing::info!(
                transmitter,
                event = set.event.name(),
                jti = %set.jti,
                sessions_ended = ended,
                sessions_changed = changed,
                "security event applied"
            );
            if *ended > 0 {
                crate::audit!(
                    crate::audit::Kind::SessionEnded,
                    by = "signal",
                    count = *ended,
                    reason = %format!("{} from {transmitter} (jti {})", set.event.name(), set.jti),
                );
            }
        }
        Effect::Ignored(why) => tracing::info!(
            transmitter,
            event = set.event.name(),
            jti = %set.jti,
            reason = %why,
            "security event ignored"
        ),
    }
}
