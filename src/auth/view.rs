//! An identity as the request path uses it: the engine's outcome, the
//! encoded headers and the signed-assertion cache, made once per session
//! (or bearer token) and policy, never per request.
//!
//! Its fields are private to `auth`: outside it, identity is only reachable
//! through [`super::admission::Admitted`], which only the gate makes.

use std::sync::Arc;

use crate::assertion::AssertionCache;
use crate::identity::engine::Outcome;
use crate::identity::{Claims, IdentityEngine};
use crate::identity_headers::{EncodedIdentity, IdentityHeaders};
use crate::session::{Footprint, Origin};

pub struct IdentityView {
    pub(in crate::auth) outcome: Outcome,
    pub(in crate::auth) encoded: EncodedIdentity,
    pub(in crate::auth) assertions: AssertionCache,
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
#[derive(Clone, Debug)]
pub struct Views(pub(in crate::auth) Arc<[Arc<IdentityView>]>);

impl Views {
    /// The view under policy `index` (0 = global).
    pub(in crate::auth) fn get(&self, index: usize) -> &Arc<IdentityView> {
        self.0.get(index).unwrap_or(&self.0[0])
    }

    pub(in crate::auth) fn global(&self) -> &IdentityView {
        &self.0[0]
    }
}

impl Footprint for Views {
    fn footprint(&self) -> usize {
        self.0
            .iter()
            .map(|view| {
                let identity = &view.outcome.identity;
                let strings: usize = [&identity.subject, &identity.user, &identity.idp, &identity.idp_issuer]
                    .iter()
                    .map(|s| s.len())
                    .sum::<usize>()
                    + identity.email.as_ref().map_or(0, String::len)
                    + identity.preferred_username.as_ref().map_or(0, String::len)
                    + [&identity.groups, &identity.roles, &identity.orgs]
                        .iter()
                        .flat_map(|list| list.iter())
                        .map(|s| s.len() + 24)
                        .sum::<usize>();
                let headers: usize = view.encoded.iter().map(|(_, v)| v.len() + 64).sum();
                std::mem::size_of::<IdentityView>() + strings + headers
            })
            .sum()
    }
}

/// Turns claims into views: the engine, then the header encoding.
pub struct ViewBuilder {
    pub(in crate::auth) engine: Arc<IdentityEngine>,
    headers: IdentityHeaders,
}

impl ViewBuilder {
    pub fn new(engine: Arc<IdentityEngine>, headers: IdentityHeaders) -> Self {
        Self { engine, headers }
    }

    pub fn build(&self, claims: &Claims, origin: Origin<'_>) -> Views {
        let views: Vec<Arc<IdentityView>> = self
            .engine
            .compute_all(claims)
            .into_iter()
            .map(|mut outcome| {
                // The provider is part of who someone is: the same email
                // from two IdPs is two people to the upstream.
                outcome.identity.idp = origin.provider.to_string();
                outcome.identity.idp_issuer = origin.issuer.to_string();
                Arc::new(IdentityView {
                    encoded: self.headers.encode(&outcome.identity),
                    outcome,
                    assertions: AssertionCache::default(),
                })
            })
            .collect();
        Views(views.into())
    }
}
