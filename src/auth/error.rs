//! Every way a login endpoint or an authentication step can fail. The
//! cause is logged with the request id; the user sees a generic page.

use http::StatusCode;

use crate::login::AssuranceAsk;
use crate::respond::{Denial, Failure, FailurePage};
use crate::store::StoreError;

/// Seconds a client is asked to wait when the store or IdP is down.
const RETRY_AFTER: u32 = 5;

/// The challenge of a 401 for nobody logged in.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"doorward\"";

/// What a caller must do to meet a route's assurance (RFC 9470).
#[derive(Debug)]
pub struct StepUp {
    /// For the log: which user, which route, what fell short.
    pub reason: String,
    pub ask: AssuranceAsk,
}

impl StepUp {
    /// `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
    /// with the `acr_values` and `max_age` a new token must meet (values
    /// are config strings; quotes and backslashes are escaped).
    pub fn challenge(&self) -> String {
        let quoted = |value: &str| value.replace('\\', "\\\\").replace('"', "\\\"");
        let mut challenge = format!(
            "{BEARER_CHALLENGE}, error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\""
        );
        if !self.ask.acr.is_empty() {
            challenge.push_str(&format!(", acr_values=\"{}\"", quoted(&self.ask.acr.join(" "))));
        }
        if let Some(max_age) = self.ask.max_age {
            challenge.push_str(&format!(", max_age=\"{max_age}\""));
        }
        challenge
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is required")]
    Unauthenticated,
    /// RFC 9470: the caller's login was not made as the route asks.
    #[error("the login does not meet the route's assurance: {}", .0.reason)]
    InsufficientAuthentication(StepUp),
    #[error("sign-in failed: {0}")]
    LoginFailed(String),
    #[error("sign-in refused by policy: {0}")]
    LoginDenied(Denial),
    #[error("sign-in is unavailable: {0}")]
    LoginUnavailable(String),
    #[error("the session store is unavailable: {0}")]
    StoreUnavailable(#[from] StoreError),
    #[error("back-channel logout refused: {0}")]
    BadLogoutToken(String),
    #[error("the form's CSRF check failed")]
    Csrf,
    #[error("access denied: {0}")]
    /// A refusal at an introspection endpoint (forward-auth, userinfo,
    /// debug): machine answers, which never echo the identity they refuse.
    Forbidden(String),
    #[error("the request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("no such doorward endpoint")]
    NotFound,
}

impl Failure for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::InsufficientAuthentication(_) | Self::LoginFailed(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::LoginDenied(_) | Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::LoginUnavailable(_) | Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadLogoutToken(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn is_security_event(&self) -> bool {
        matches!(
            self,
            Self::LoginFailed(_) | Self::LoginDenied(_) | Self::BadLogoutToken(_) | Self::Csrf | Self::Forbidden(_)
        )
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, Self::LoginUnavailable(_) | Self::StoreUnavailable(_)).then_some(RETRY_AFTER)
    }

    fn challenge(&self) -> Option<String> {
        match self {
            Self::Unauthenticated => Some(BEARER_CHALLENGE.into()),
            Self::InsufficientAuthentication(step_up) => Some(step_up.challenge()),
            _ => None,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::LoginFailed(_) => "Sign-in failed",
            Self::LoginUnavailable(_) => "Sign-in is temporarily unavailable",
            _ => crate::respond::page::title_for(self.status()),
        }
    }

    fn page(&self) -> FailurePage<'_> {
        match self {
            Self::LoginDenied(denial) => FailurePage::Denied {
                account: &denial.account,
            },
            Self::LoginFailed(_) => FailurePage::LoginFailed,
            _ => FailurePage::Error,
        }
    }
}
