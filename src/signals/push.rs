//! Push delivery (RFC 8935): the transmitter POSTs one SET per request to
//! `/_doorward/ssf/{name}` (or `/ssf/{name}` on the admin listener) with
//! the credential doorward gave it. `202` on acceptance; `400` with the
//! JSON `err` of RFC 8935 §2.4 otherwise; `413` for a body over 64 KiB;
//! `503` when the store could not take it (the transmitter sends again).
//! The credential is checked before the body is read.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};

use super::receiver::Receiver;
use crate::config::signals::Delivery;
use crate::respond::body::{BodyError, BodyLimits, ClientBody, RequestBody};
use crate::respond::{full, Reply};

/// The largest SET taken (RFC 8935 sets no limit; real SETs are a few KiB).
pub const MAX_SET: u64 = 64 * 1024;

/// Answers one push to `receiver`.
pub async fn handle(receiver: &Receiver, parts: &Parts, body: impl ClientBody, limits: BodyLimits) -> Reply {
    if parts.method != Method::POST {
        let mut reply = error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "push with POST");
        reply.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return reply;
    }
    if receiver.delivery != Delivery::Push {
        return error(StatusCode::NOT_FOUND, "invalid_request", "this receiver polls");
    }
    if !authorized(receiver, parts) {
        receiver
            .metrics
            .event(&receiver.name, "unknown", "authentication_failed");
        tracing::warn!(transmitter = %receiver.name, "security event push refused: no or wrong credential");
        return error(
            StatusCode::BAD_REQUEST,
            "authentication_failed",
            "the push credential is missing or wrong",
        );
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/secevent+jwt") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be one SET (Content-Type: application/secevent+jwt)",
        );
    }
    let limits = BodyLimits {
        max: Some(MAX_SET),
        ..limits
    };
    let bytes: Bytes = match RequestBody::read_whole(body, limits).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => {
            receiver.metrics.event(&receiver.name, "unknown", "too_large");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the SET is larger than 64 KiB",
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body could not be read: {e}"),
            )
        }
    };
    let Ok(token) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "the SET is not text");
    };
    match receiver.receive(token.trim()).await {
        Ok(_) => full(StatusCode::ACCEPTED, "", "text/plain"),
        Err(refused) if refused.is_transient() => {
            let mut reply = error(StatusCode::SERVICE_UNAVAILABLE, refused.code(), "try again shortly");
            reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            reply
        }
        Err(refused) => error(StatusCode::BAD_REQUEST, refused.code(), &refused.to_string()),
    }
}

/// `Authorization: Bearer <push_token>`, compared in constant time.
fn authorized(receiver: &Receiver, parts: &Parts) -> bool {
    let Some(expected) = &receiver.push_token else {
        return false;
    };
    let presented = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    presented.is_some_and(|token| expected.matches(token.as_bytes()))
}

fn error(status: StatusCode, code: &str, description: &str) -> Reply {
    let body = serde_json::json!({ "err": code, "description": description });
    full(status, body.to_string(), "application/json")
}
