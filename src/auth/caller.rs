//! A caller doorward recognised: a session or a verified bearer token.
//! Recognised is not admitted: nothing here hands out an identity; the
//! gate in [`super::admission`] decides, and only it reads the views.

use std::sync::Arc;

use super::view::Views;
use crate::login::PassedTokens;
use crate::session::LiveSession;

/// Who a request is from, before any policy has looked at it.
pub enum Caller {
    Session(Arc<LiveSession<Views>>),
    Bearer(Arc<BearerLogin>),
}

impl Caller {
    pub(in crate::auth) fn views(&self) -> &Views {
        match self {
            Self::Session(session) => &session.views,
            Self::Bearer(bearer) => &bearer.views,
        }
    }

    /// The provider that vouched for this caller.
    pub fn provider(&self) -> &str {
        match self {
            Self::Session(session) => &session.provider,
            Self::Bearer(bearer) => &bearer.provider,
        }
    }

    pub(in crate::auth) fn passed_tokens(&self) -> Option<&Arc<PassedTokens>> {
        match self {
            Self::Session(session) => session.passed_tokens.as_ref(),
            Self::Bearer(bearer) => bearer.passed_tokens.as_ref(),
        }
    }

    /// What to call this caller in a log line (the global view's user).
    pub fn log_name(&self) -> &str {
        &self.views().global().outcome.identity.user
    }
}

/// A verified bearer token, cached until it expires.
pub struct BearerLogin {
    pub(in crate::auth) views: Views,
    pub(in crate::auth) provider: String,
    pub(in crate::auth) expires_at: i64,
    /// The provider's key set it was verified under
    /// (`OidcProvider::keys_generation`).
    pub(in crate::auth) keys_generation: u64,
    /// The directory generation it was derived under
    /// ([`crate::access::Generation::directory`]).
    pub(in crate::auth) directory_generation: u64,
    pub(in crate::auth) passed_tokens: Option<Arc<PassedTokens>>,
}
