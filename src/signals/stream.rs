//! The stream at the transmitter (SSF 1.0 §8): with `manage_stream`,
//! doorward finds its stream (by its delivery endpoint, or its
//! description for polling), creates it if missing, updates it when the
//! events or the push credential changed, asks the transmitter to verify
//! it, and reads its status, reported in readiness and metrics. The
//! stream's own events (`verification`, `stream-updated`) are answered here.

use serde_json::{json, Value};

use super::effects::Effect;
use super::events::Event;
use super::receiver::{Receiver, StreamState};
use super::set::SecurityEvent;
use crate::config::signals::Delivery;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the transmitter's metadata has no {0}")]
    NoEndpoint(&'static str),
    #[error("{endpoint}: {why}")]
    Call { endpoint: &'static str, why: String },
}

impl Receiver {
    pub fn stream_state(&self) -> StreamState {
        self.stream.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update_stream(&self, change: impl FnOnce(&mut StreamState)) {
        if let Ok(mut state) = self.stream.lock() {
            change(&mut state);
        }
    }

    /// The stream's own events: a verification answers ours, an update
    /// records the status. None for every other event.
    pub(super) fn stream_event(&self, set: &SecurityEvent) -> Option<Effect> {
        match &set.event {
            Event::Verification { state } => {
                let mut matched = false;
                self.update_stream(|s| {
                    if s.awaiting_verification.is_some() && s.awaiting_verification == *state {
                        s.awaiting_verification = None;
                        s.verified = true;
                        matched = true;
                    }
                });
                tracing::info!(transmitter = %self.name, matched, "stream verification received");
                Some(Effect::Ignored(if matched {
                    "verification: the stream delivers".into()
                } else {
                    "verification: not the state asked for".into()
                }))
            }
            Event::StreamUpdated { status, .. } => {
                let status = status.as_str().to_string();
                self.metrics.stream_enabled(&self.name, status == "enabled");
                tracing::warn!(transmitter = %self.name, %status, "the transmitter changed the stream's status");
                self.update_stream(|s| s.status = Some(status));
                Some(Effect::Ignored("stream-updated recorded".into()))
            }
            _ => None,
        }
    }

    /// Finds or creates the stream, brings it up to date, asks for
    /// verification and reads the status.
    pub async fn manage_stream(&self) -> Result<(), StreamError> {
        let config = self.find_or_create().await?;
        let stream_id = config.get("stream_id").and_then(Value::as_str).map(str::to_string);
        let poll_url = config
            .pointer("/delivery/endpoint_url")
            .and_then(Value::as_str)
            .filter(|_| self.delivery == Delivery::Poll)
            .map(str::to_string);
        self.update_stream(|s| {
            s.stream_id.clone_from(&stream_id);
            if poll_url.is_some() {
                s.poll_url.clone_from(&poll_url);
            }
            s.problem = None;
        });
        self.read_status().await?;
        self.request_verification().await
    }

    async fn find_or_create(&self) -> Result<Value, StreamError> {
        let endpoint = self.endpoint("configuration_endpoint", |m| m.configuration_endpoint.clone())?;
        let listed = self.call("configuration", http::Method::GET, &endpoint, None).await?;
        let streams = match listed {
            Value::Array(streams) => streams,
            Value::Null => Vec::new(),
            one => vec![one],
        };
        let wanted = self.wanted_config();
        if let Some(mine) = streams.into_iter().find(|s| self.is_mine(s)) {
            let requested: Vec<&str> = mine
                .get("events_requested")
                .and_then(Value::as_array)
                .map(|e| e.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let same_events = self.events_requested.iter().all(|e| requested.contains(e));
            // The push credential is write-only at most transmitters: a
            // push stream is updated each start so a rotated token reaches it.
            if same_events && self.delivery == Delivery::Poll {
                return Ok(mine);
            }
            let mut update = wanted;
            update["stream_id"] = mine.get("stream_id").cloned().unwrap_or(Value::Null);
            let updated = self
                .call("configuration", http::Method::PATCH, &endpoint, Some(update))
                .await?;
            return Ok(if updated.is_object() { updated } else { mine });
        }
        self.call("configuration", http::Method::POST, &endpoint, Some(wanted))
            .await
    }

    /// The stream configuration doorward asks for.
    fn wanted_config(&self) -> Value {
        let mut delivery = json!({ "method": self.delivery.urn() });
        if self.delivery == Delivery::Push {
            delivery["endpoint_url"] = json!(self.push_url);
            if let Some(token) = &self.push_token {
                delivery["authorization_header"] = json!(format!("Bearer {}", token.expose()));
            }
        }
        json!({
            "delivery": delivery,
            "events_requested": self.events_requested,
            "description": self.description(),
        })
    }

    fn description(&self) -> String {
        format!("doorward receiver `{}` ({})", self.name, self.audience)
    }

    fn is_mine(&self, stream: &Value) -> bool {
        match self.delivery {
            Delivery::Push => stream.pointer("/delivery/endpoint_url").and_then(Value::as_str) == Some(&self.push_url),
            Delivery::Poll => {
                stream.pointer("/delivery/method").and_then(Value::as_str) == Some(self.delivery.urn())
                    && stream.get("description").and_then(Value::as_str) == Some(&self.description())
            }
        }
    }

    /// Reads the stream's status (when the transmitter has a status
    /// endpoint) into readiness and metrics.
    pub async fn read_status(&self) -> Result<(), StreamError> {
        let Some(stream_id) = self.stream_state().stream_id else {
            return Ok(());
        };
        let Ok(endpoint) = self.endpoint("status_endpoint", |m| m.status_endpoint.clone()) else {
            return Ok(());
        };
        let url = with_query(&endpoint, "stream_id", &stream_id);
        let answer = self.call("status", http::Method::GET, &url, None).await?;
        let status = answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        self.metrics.stream_enabled(&self.name, status == "enabled");
        self.update_stream(|s| s.status = Some(status));
        Ok(())
    }

    /// Asks the transmitter for a verification event with a fresh state.
    async fn request_verification(&self) -> Result<(), StreamError> {
        let Some(stream_id) = self.stream_state().stream_id else {
            return Ok(());
        };
        let Ok(endpoint) = self.endpoint("verification_endpoint", |m| m.verification_endpoint.clone()) else {
            return Ok(());
        };
        let state = format!("{:032x}", rand::random::<u128>());
        self.update_stream(|s| s.awaiting_verification = Some(state.clone()));
        let body = json!({ "stream_id": stream_id, "state": state });
        self.call("verification", http::Method::POST, &endpoint, Some(body))
            .await?;
        Ok(())
    }

    fn endpoint(
        &self,
        name: &'static str,
        pick: impl Fn(&super::transmitter::TransmitterMetadata) -> Option<String>,
    ) -> Result<String, StreamError> {
        self.transmitter
            .metadata()
            .and_then(|m| pick(&m))
            .ok_or(StreamError::NoEndpoint(name))
    }

    /// One JSON call to the transmitter with doorward's credential.
    pub(super) async fn call(
        &self,
        endpoint: &'static str,
        method: http::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, StreamError> {
        let fail = |why: String| StreamError::Call { endpoint, why };
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = &self.transmitter_token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let bytes = match &body {
            Some(body) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?
            }
            None => Vec::new(),
        };
        let request = request.body(bytes).map_err(|e| fail(e.to_string()))?;
        let response = self
            .transmitter
            .http()
            .send(endpoint, request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let err = serde_json::from_slice::<Value>(response.body()).ok().and_then(|v| {
                v.get("err")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            return Err(fail(format!(
                "answered {status}{}",
                err.map(|e| format!(" ({e})")).unwrap_or_default()
            )));
        }
        if response.body().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(response.body()).map_err(|e| fail(format!("not JSON: {e}")))
    }

    pub(super) fn stream_problem(&self, problem: Option<String>) {
        self.update_stream(|s| s.problem = problem);
    }
}

fn with_query(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{url}{separator}{name}={encoded}")
}
