//! Every way a proxied request can fail before or at the upstream. Turned
//! into a response by [`crate::respond::failure_response`], like every
//! other failure: the cause goes to the log, the user gets a generic page.

use std::time::Duration;

use http::StatusCode;

use super::host::HostError;
use super::upstream::UpstreamError;
use crate::auth::AuthError;
use crate::paths::PathError;
use crate::respond::body::BodyFailure;
use crate::respond::{Denial, Failure, FailurePage};

/// Why the request path could not be assembled from a config.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("route `{route}`: {reason}")]
    Upstream { route: String, reason: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Scim(#[from] crate::scim::ScimSetupError),
    #[error(transparent)]
    Signals(#[from] crate::signals::SignalsSetupError),
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    #[error("bad Host: {0}")]
    BadHost(#[from] HostError),
    #[error("no route for this host and path")]
    NoRoute,
    #[error("no such doorward endpoint")]
    NotFound,
    #[error("the request declares a body larger than the limit")]
    BodyTooLarge,
    #[error("authentication is required")]
    Unauthenticated,
    #[error("the client's request body failed: {0:?}")]
    ClientBody(BodyFailure),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("the request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("access denied: {0}")]
    Forbidden(Denial),
    #[error("this address may not read this endpoint")]
    NotPermitted,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the upstream sent no response head within {0:?}")]
    UpstreamTimeout(Duration),
    #[error("the upstream's answer to an upgrade is not valid: {0}")]
    BadUpgrade(&'static str),
}

impl Failure for ProxyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadPath(_) | Self::BadHost(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute | Self::NotFound => StatusCode::NOT_FOUND,
            Self::BodyTooLarge | Self::ClientBody(BodyFailure::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ClientBody(BodyFailure::Stalled) => StatusCode::REQUEST_TIMEOUT,
            Self::ClientBody(BodyFailure::Broken) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NotPermitted => StatusCode::FORBIDDEN,
            Self::Auth(e) => e.status(),
            Self::Upstream(_) | Self::BadUpgrade(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn is_security_event(&self) -> bool {
        match self {
            Self::Forbidden(_) | Self::BadHost(_) | Self::BadUpgrade(_) => true,
            Self::Auth(e) => e.is_security_event(),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Auth(e) => e.retry_after(),
            _ => None,
        }
    }

    fn challenge(&self) -> Option<String> {
        match self {
            Self::Unauthenticated => Some(crate::auth::BEARER_CHALLENGE.into()),
            Self::Auth(e) => e.challenge(),
            _ => None,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Auth(e) => e.title(),
            _ => crate::respond::page::title_for(self.status()),
        }
    }

    fn page(&self) -> FailurePage<'_> {
        match self {
            Self::Forbidden(denial) => FailurePage::Denied {
                account: &denial.account,
            },
            Self::Auth(e) => e.page(),
            _ => FailurePage::Error,
        }
    }
}

impl ProxyError {
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
}
