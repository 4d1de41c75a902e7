//! Everything doorward answers by itself, for the proxy and the login
//! endpoints alike: the body types, small response builders, and the one
//! place that turns a failure into a response ([`failure_response`]).
//!
//! Failures keep their cause for the log; the user gets a generic page (or
//! JSON for API clients) with the request id, never the internal reason.

pub mod body;
pub mod page;
pub mod template;
pub mod theme;

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

pub use body::ResponseBody;
pub use page::Pages;

/// Every answer doorward makes.
pub type Reply = Response<ResponseBody>;

/// What an error must say about itself so [`failure_response`] can answer
/// for it. Each module keeps its own `thiserror` enum and implements this.
pub trait Failure: std::error::Error {
    fn status(&self) -> StatusCode;

    /// Refusals an operator wants in the log at warn: failed or denied
    /// logins, bad tokens, CSRF, forbidden requests.
    fn is_security_event(&self) -> bool {
        false
    }

    /// Seconds a client should wait before retrying (503s).
    fn retry_after(&self) -> Option<u32> {
        None
    }

    /// The `WWW-Authenticate` to send, if any (a 401 for API clients).
    fn challenge(&self) -> Option<String> {
        None
    }

    /// The generic title the user sees; by default from the status.
    fn title(&self) -> &'static str {
        page::title_for(self.status())
    }

    /// Which page a browser gets.
    fn page(&self) -> FailurePage<'_> {
        FailurePage::Error
    }
}

/// The page for a failure: most get the generic error page; a refused
/// account is told who it is, a failed login is offered a new one.
pub enum FailurePage<'a> {
    Error,
    Denied { account: &'a str },
    LoginFailed,
}

/// A refusal of a known account: the account name may be shown to its
/// owner, the reason (which rule said no) only logged.
#[derive(Debug)]
pub struct Denial {
    pub account: String,
    pub reason: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The response for a failure; `request_id` lets a user quote it and an
/// operator find the log line with the cause.
pub fn failure_response(pages: &Pages, failure: &dyn Failure, request_id: &str, json: bool) -> Reply {
    let status = failure.status();
    let mut response = match (json, failure.page()) {
        (true, _) => page::error_json(status, failure.title(), request_id),
        (false, FailurePage::Denied { account }) => pages.denied(status, account, request_id),
        (false, FailurePage::LoginFailed) => pages.login_failed(status, request_id),
        (false, FailurePage::Error) => pages.error(status, failure.title(), request_id),
    };
    if let Some(challenge) = failure.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    if let Some(seconds) = failure.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// API clients get JSON: they ask for it and do not ask for HTML.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT).iter().any(|v| {
        let v = v.to_str().unwrap_or_default();
        v.contains("json") && !v.contains("text/html")
    })
}

/// An uncacheable response: everything doorward says itself is about one
/// user or one moment.
pub fn no_store(mut response: Reply) -> Reply {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A full body with its content type, uncacheable.
pub fn full(status: StatusCode, body: impl Into<bytes::Bytes>, content_type: &'static str) -> Reply {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    no_store(response)
}

pub fn json(body: String) -> Reply {
    full(StatusCode::OK, body, "application/json")
}

/// A `302 Found` to `location`; None when the target cannot be a header.
pub fn redirect(location: &str) -> Option<Reply> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(LOCATION, location);
    Some(no_store(response))
}

/// Adds a `Set-Cookie` when there is one.
pub fn add_cookie(response: &mut Reply, cookie: Option<HeaderValue>) {
    if let Some(cookie) = cookie {
        response.headers_mut().append(http::header::SET_COOKIE, cookie);
    }
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

    #[derive(Debug, thiserror::Error)]
    #[error("the database is down (secret detail)")]
    struct Down;

    impl Failure for Down {
        fn status(&self) -> StatusCode {
            StatusCode::SERVICE_UNAVAILABLE
        }
        fn retry_after(&self) -> Option<u32> {
            Some(5)
        }
    }

    #[test]
    fn failures_answer_generically_with_retry_after() {
        let response = failure_response(&Pages::builtin(), &Down, "req-1", true);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "5");
        let ResponseBody::Full(Some(body)) = response.body() else {
            panic!("a full body")
        };
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("req-1") && !text.contains("secret"), "{text}");
    }
}
