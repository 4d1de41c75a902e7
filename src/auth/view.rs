//! An identity as the request path uses it: the engine's outcome, the
//! encoded headers and the signed-assertion cache, made once per session
//! (or bearer token) and policy, never per request.

use std::sync::Arc;

use crate::assertion::AssertionCache;
use crate::identity::engine::Outcome;
use crate::identity::Claims;
use crate::proxy::identity_headers::EncodedIdentity;

pub struct IdentityView {
    pub outcome: Outcome,
    pub encoded: EncodedIdentity,
    pub assertions: AssertionCache,
}

impl std::fmt::Debug for IdentityView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityView")
            .field("user", &self.outcome.identity.user)
            .field("groups", &self.outcome.identity.groups.len())
            .finish_non_exhaustive()
    }
}

/// One view per policy: index 0 is the global `[identity]`.
pub type Views = Arc<[Arc<IdentityView>]>;

/// Turns claims into views (the engine plus header encoding).
pub type ViewsFn = Arc<dyn Fn(&Claims) -> Views + Send + Sync>;
