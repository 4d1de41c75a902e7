//! An identity as the request path uses it: the engine's outcome, the
//! encoded headers and the signed-assertion cache, made once per session
//! (or bearer token) and policy, never per request.
//!
//! Its fields are private to `auth`: outside it, identity is only reachable
//! through [`super::admission::Admitted`], which only the gate makes.

use std::sync::Arc;

use crate::access::Posture;
use crate::assertion::AssertionCache;
use crate::identity::engine::{Directory, LoginDecision, Outcome};
use crate::identity::{Claims, IdentityEngine};
use crate::identity_headers::{EncodedIdentity, IdentityHeaders};
use crate::session::{Footprint, Origin};
use crate::store::directory::DirectoryFacts;

pub struct IdentityView {
    pub(in crate::auth) outcome: Outcome,
    pub(in crate::auth) encoded: EncodedIdentity,
    pub(in crate::auth) assertions: AssertionCache,
    /// What shared signals said of the session (the route may ask more).
    pub(in crate::auth) posture: Posture,
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

    pub fn build(&self, claims: &Claims, origin: Origin<'_>, facts: Option<&DirectoryFacts>) -> Views {
        let directory = facts.map(directory_of);
        let views: Vec<Arc<IdentityView>> = self
            .engine
            .compute_all(claims, directory.as_ref())
            .into_iter()
            .map(|mut outcome| {
                // A deactivated user is refused by the gate even before the
                // directory change has ended their sessions everywhere.
                if facts.is_some_and(|f| !f.active) {
                    outcome.login = LoginDecision {
                        allowed: false,
                        reason: Some("deactivated in the SCIM directory".into()),
                    };
                }
                // The provider is part of who someone is: the same email
                // from two IdPs is two people to the upstream.
                outcome.identity.idp = origin.provider.to_string();
                outcome.identity.idp_issuer = origin.issuer.to_string();
                outcome.identity.authentication = origin.authentication.clone();
                Arc::new(IdentityView {
                    encoded: self.headers.encode(&outcome.identity),
                    outcome,
                    assertions: AssertionCache::default(),
                    posture: origin.posture.clone(),
                })
            })
            .collect();
        Views(views.into())
    }
}

use crate::directory::DOORWARD_USER_SCHEMA;

/// The directory's facts in the engine's terms: group display names, and
/// roles from doorward's extension (strings, or objects with `value`).
pub(in crate::auth) fn directory_of(facts: &DirectoryFacts) -> Directory {
    let resource: serde_json::Value = serde_json::from_str(&facts.resource).unwrap_or_default();
    let roles = resource
        .get(DOORWARD_USER_SCHEMA)
        .and_then(|ext| ext.get("roles"))
        .and_then(|roles| roles.as_array())
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r.as_str().or_else(|| r.get("value").and_then(|v| v.as_str())))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Directory {
        groups: facts.groups.clone(),
        roles,
        orgs: Vec::new(),
    }
}
