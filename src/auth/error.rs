//! Every way a login endpoint or an authentication step can fail. The
//! cause is logged with the request id; the user sees a generic page.

use http::StatusCode;

use crate::respond::{Denial, Failure, FailurePage};
use crate::store::StoreError;

/// Seconds a client is asked to wait when the store or IdP is down.
const RETRY_AFTER: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is required")]
    Unauthenticated,
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
            Self::Unauthenticated | Self::LoginFailed(_) => StatusCode::UNAUTHORIZED,
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

    fn challenge(&self) -> bool {
        matches!(self, Self::Unauthenticated)
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
