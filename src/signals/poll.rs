//! Poll delivery (RFC 8936): doorward asks the transmitter for waiting
//! SETs, applies each, and acknowledges it in the next request (or
//! reports it in `setErrs` with its error code). A SET that failed for a
//! reason of doorward's own (the store down) is neither acknowledged nor
//! reported, so the transmitter delivers it again. The loop holds the
//! receiver weakly and ends with it (a reload replaced it).

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::Instrument;

use super::receiver::Receiver;

/// SETs asked for per poll.
const MAX_EVENTS: usize = 100;
/// Retry delay after a failed poll, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

pub fn spawn(receiver: &Arc<Receiver>) {
    let receiver: Weak<Receiver> = Arc::downgrade(receiver);
    tokio::spawn(async move {
        let mut acks: Vec<String> = Vec::new();
        let mut errors = Map::new();
        let mut retry = RETRY_FIRST;
        loop {
            let Some(this) = receiver.upgrade() else { return };
            let span = tracing::info_span!(target: "doorward::trace", "doorward.signals.poll", doorward.transmitter = %this.name);
            let wait = match this.poll_once(&mut acks, &mut errors).instrument(span).await {
                Ok(more) => {
                    retry = RETRY_FIRST;
                    // Acknowledge at once what was just taken.
                    if more || !acks.is_empty() || !errors.is_empty() {
                        Duration::ZERO
                    } else {
                        this.poll_interval
                    }
                }
                Err(e) => {
                    tracing::warn!(transmitter = %this.name, error = %e, retry_in = ?retry, "polling the transmitter failed");
                    this.stream_problem(Some(format!("polling failed: {e}")));
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
            };
            drop(this);
            tokio::time::sleep(wait).await;
        }
    });
}

impl Receiver {
    fn poll_url_now(&self) -> Option<String> {
        self.stream_state().poll_url.or_else(|| self.poll_url.clone())
    }

    /// One poll: sends the pending acknowledgements and errors, takes the
    /// SETs returned. True if the transmitter has more.
    async fn poll_once(
        &self,
        acks: &mut Vec<String>,
        errors: &mut Map<String, Value>,
    ) -> Result<bool, super::stream::StreamError> {
        let Some(url) = self.poll_url_now() else {
            return Err(super::stream::StreamError::NoEndpoint("poll endpoint (yet)"));
        };
        let body = json!({
            "maxEvents": MAX_EVENTS,
            "returnImmediately": true,
            "ack": acks,
            "setErrs": errors,
        });
        let answer = self.call("poll", http::Method::POST, &url, Some(body)).await?;
        acks.clear();
        errors.clear();
        self.stream_problem(None);
        if let Some(sets) = answer.get("sets").and_then(Value::as_object) {
            for (jti, token) in sets {
                let Some(token) = token.as_str() else {
                    errors.insert(
                        jti.clone(),
                        json!({"err": "invalid_request", "description": "not a SET"}),
                    );
                    continue;
                };
                match self.receive(token).await {
                    Ok(_) => acks.push(jti.clone()),
                    Err(refused) if refused.is_transient() => {}
                    Err(refused) => {
                        errors.insert(
                            jti.clone(),
                            json!({"err": refused.code(), "description": refused.to_string()}),
                        );
                    }
                }
            }
        }
        Ok(answer.get("moreAvailable").and_then(Value::as_bool).unwrap_or(false))
    }
}
