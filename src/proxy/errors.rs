//! Every way a request can fail in the proxy, and the one place that turns
//! a failure into a response: a generic page for browsers or JSON for API
//! clients, with the request id and never the internal reason (that goes to
//! the log).

use std::time::Duration;

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::body::{BodyFailure, ResponseBody};
use super::path::PathError;
use super::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    #[error("no route for this host and path")]
    NoRoute,
    #[error("no such doorward endpoint")]
    NotFound,
    #[error("the request declares a body larger than the limit")]
    BodyTooLarge,
    #[error("authentication is required and no login method is configured for this route")]
    Unauthenticated,
    #[error("the client's request body failed: {0:?}")]
    ClientBody(BodyFailure),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the upstream sent no response head within {0:?}")]
    UpstreamTimeout(Duration),
    #[error("the request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("sign-in failed: {0}")]
    LoginFailed(String),
    #[error("sign-in refused by policy: {0}")]
    LoginDenied(String),
    #[error("sign-in is unavailable: {0}")]
    LoginUnavailable(String),
    #[error("back-channel logout refused: {0}")]
    BadLogoutToken(String),
    #[error("the form's CSRF check failed")]
    Csrf,
    #[error("access denied: {0}")]
    Forbidden(String),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadPath(_) | Self::BadRequest(_) | Self::BadLogoutToken(_) => StatusCode::BAD_REQUEST,
            Self::LoginFailed(_) => StatusCode::UNAUTHORIZED,
            Self::LoginDenied(_) | Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::LoginUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoRoute | Self::NotFound => StatusCode::NOT_FOUND,
            Self::BodyTooLarge | Self::ClientBody(BodyFailure::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ClientBody(BodyFailure::Stalled) => StatusCode::REQUEST_TIMEOUT,
            Self::ClientBody(BodyFailure::Broken) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Refusals an operator wants to see in the log: failed or denied
    /// logins, bad logout tokens, CSRF.
    pub fn is_security_event(&self) -> bool {
        matches!(
            self,
            Self::LoginFailed(_) | Self::LoginDenied(_) | Self::BadLogoutToken(_) | Self::Csrf | Self::Forbidden(_)
        )
    }

    /// The metrics label for upstream failures, `None` for the others.
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            Self::Upstream(UpstreamError::ConnectTimeout(_)) => Some("connect_timeout"),
            Self::Upstream(UpstreamError::Connect(_)) => Some("connect"),
            Self::Upstream(UpstreamError::Tls(_)) => Some("tls"),
            Self::Upstream(UpstreamError::Handshake(_) | UpstreamError::Request(_)) => Some("request"),
            Self::UpstreamTimeout(_) => Some("timeout"),
            _ => None,
        }
    }

    /// What the user is told: short, generic, never the cause.
    fn title(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
            StatusCode::REQUEST_TIMEOUT => "Request timed out",
            StatusCode::UNAUTHORIZED if matches!(self, Self::LoginFailed(_)) => "Sign-in failed",
            StatusCode::UNAUTHORIZED => "Sign-in required",
            StatusCode::FORBIDDEN => "Access denied",
            StatusCode::SERVICE_UNAVAILABLE => "Sign-in is temporarily unavailable",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::BAD_GATEWAY => "The application is unavailable",
            StatusCode::GATEWAY_TIMEOUT => "The application did not answer in time",
            _ => "Something went wrong",
        }
    }

    /// The response for this error; `request_id` lets a user quote it and
    /// an operator find the log line with the cause.
    pub fn to_response(&self, request_id: &str, json: bool) -> Response<ResponseBody> {
        let mut response = error_response(self.status(), self.title(), request_id, json);
        if matches!(self, Self::Unauthenticated) {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"doorward\""),
            );
        }
        response
    }
}

/// A small error answer in the client's preferred form.
pub fn error_response(status: StatusCode, title: &str, request_id: &str, json: bool) -> Response<ResponseBody> {
    let (content_type, body) = if json {
        let body = serde_json::json!({
            "error": title,
            "status": status.as_u16(),
            "request_id": request_id,
        });
        ("application/json", body.to_string())
    } else {
        let title = html_escape(title);
        let id = html_escape(request_id);
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <meta name=\"viewport\" content=\"width=device-width\"></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem\">\
             <h1>{title}</h1><p>HTTP {code}. If this keeps happening, give this reference to your \
             administrator: <code>{id}</code></p></body></html>\n",
            code = status.as_u16(),
        );
        ("text/html; charset=utf-8", body)
    };
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// API clients get JSON: they ask for it and do not ask for HTML.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT).iter().any(|v| {
        let v = v.to_str().unwrap_or_default();
        v.contains("json") && !v.contains("text/html")
    })
}

pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_only_for_clients_that_ask_without_html() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&h));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(!wants_json(&h));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn pages_escape_what_they_echo() {
        assert_eq!(html_escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
