//! SCIM errors (RFC 7644 §3.12): every refusal the server makes, with the
//! HTTP status and `scimType` an IdP acts on, and the one place that turns
//! them into the error body
//! `{"schemas": [...Error], "status": "400", "scimType": ..., "detail": ...}`.
//!
//! Details are written for the IdP's administrator (which attribute, which
//! offset of a filter); they quote client input only after the parsers
//! shortened and escaped it, and never say anything about the store or the
//! credentials beyond "unavailable" and "not accepted".

use http::header::{HeaderValue, RETRY_AFTER};
use http::StatusCode;
use serde_json::json;

use super::reply;
use crate::respond::Reply;

/// `urn:ietf:params:scim:api:messages:2.0:Error`
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Seconds an IdP is asked to wait when the store is unavailable.
const RETRY_AFTER_UNAVAILABLE: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    Mutability(String),
    /// A userName another user has (ignoring case).
    #[error("{0}")]
    Uniqueness(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this endpoint does not support the method")]
    MethodNotAllowed,
    /// `If-Match` named a version the resource no longer has.
    #[error("the resource changed since the version in If-Match")]
    PreconditionFailed,
    #[error("the request body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("send application/scim+json (or application/json)")]
    UnsupportedMediaType,
    /// No or wrong credentials. What was wrong goes to the log only.
    #[error("authentication is required")]
    Unauthorized,
    /// Too many failed attempts from this address.
    #[error("too many failed authentication attempts; retry later")]
    RateLimited { retry_after: u32 },
    #[error("{0}")]
    NotImplemented(&'static str),
    /// Concurrent writes kept winning over this one.
    #[error("the resource is being changed concurrently; retry")]
    Busy,
    /// The store failed; the cause is logged, the IdP retries.
    #[error("the directory store is unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The write is stored but its effect on sessions could not be applied:
    /// the IdP must retry so a deactivation is not left half done.
    #[error("applying the change to sessions failed: {0}")]
    Sessions(#[from] crate::directory::NotifyError),
}

impl ScimError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidFilter(_)
            | Self::InvalidPath(_)
            | Self::InvalidValue(_)
            | Self::InvalidSyntax(_)
            | Self::NoTarget(_)
            | Self::Mutability(_) => StatusCode::BAD_REQUEST,
            Self::Uniqueness(_) | Self::Busy => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Store(_) | Self::Sessions(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// RFC 7644 Table 9's `scimType`, for the 400s (and 409) that have one.
    pub fn scim_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::InvalidFilter(_) => "invalidFilter",
            Self::InvalidPath(_) => "invalidPath",
            Self::InvalidValue(_) => "invalidValue",
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::NoTarget(_) => "noTarget",
            Self::Mutability(_) => "mutability",
            Self::Uniqueness(_) => "uniqueness",
            _ => return None,
        })
    }

    /// What the IdP reads: the message, except for failures whose cause is
    /// ours to know (the store's error text names hosts and tables).
    fn detail(&self) -> String {
        match self {
            Self::Store(_) | Self::Sessions(_) => "the directory is unavailable; retry later".into(),
            other => other.to_string(),
        }
    }

    /// Failures an operator should see at warn level.
    pub fn is_server_side(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Sessions(_))
    }

    /// The SCIM error response.
    pub fn to_reply(&self) -> Reply {
        let status = self.status();
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": status.as_u16().to_string(),
            "detail": self.detail(),
        });
        if let Some(scim_type) = self.scim_type() {
            body["scimType"] = json!(scim_type);
        }
        let mut response = reply::json(status, &body);
        let retry_after = match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Store(_) | Self::Sessions(_) => Some(RETRY_AFTER_UNAVAILABLE),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<super::FilterError> for ScimError {
    fn from(e: super::FilterError) -> Self {
        Self::InvalidFilter(e.to_string())
    }
}

impl From<super::PathError> for ScimError {
    fn from(e: super::PathError) -> Self {
        match e.scim_type() {
            "invalidFilter" => Self::InvalidFilter(e.to_string()),
            _ => Self::InvalidPath(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::ResponseBody;

    fn body(error: &ScimError) -> serde_json::Value {
        let reply = error.to_reply();
        assert_eq!(reply.headers()["content-type"], reply::CONTENT_TYPE_SCIM);
        let ResponseBody::Full(Some(bytes)) = reply.body() else {
            panic!("a full body")
        };
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn bodies_carry_status_as_a_string_and_the_scim_type() {
        let b = body(&ScimError::Uniqueness("userName `a` is taken".into()));
        assert_eq!(b["schemas"], json!([ERROR_URN]));
        assert_eq!(b["status"], "409");
        assert_eq!(b["scimType"], "uniqueness");
        let b = body(&ScimError::NotFound("no such user".into()));
        assert_eq!((b["status"].as_str(), b.get("scimType")), (Some("404"), None));
    }

    #[test]
    fn parser_errors_keep_their_scim_type() {
        let filter = super::super::Filter::parse("userName eq").expect_err("incomplete");
        assert_eq!(ScimError::from(filter).scim_type(), Some("invalidFilter"));
        let path = super::super::PatchPath::parse("emails[type eq]").expect_err("bad filter");
        assert_eq!(ScimError::from(path).scim_type(), Some("invalidFilter"));
        let path = super::super::PatchPath::parse("emails..x").expect_err("bad path");
        assert_eq!(ScimError::from(path).scim_type(), Some("invalidPath"));
    }

    #[test]
    fn store_failures_say_nothing_about_the_store_and_ask_for_a_retry() {
        let error = ScimError::Store(crate::store::StoreError::Corrupt(
            "table scim_users at db.internal".into(),
        ));
        let reply = error.to_reply();
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.headers()[RETRY_AFTER], "5");
        let b = body(&error);
        assert!(!b["detail"].as_str().unwrap_or_default().contains("db.internal"), "{b}");
    }
}
