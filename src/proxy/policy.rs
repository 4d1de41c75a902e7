//! Authorization decisions. Forwarding takes a [`Permit`], and only this
//! module can make one, so a path that skips the check does not compile.

use std::sync::Arc;

use super::identity_headers::EncodedIdentity;
use super::route::Route;
use crate::identity::Identity;

/// A caller whose identity was established (session or bearer token).
pub struct Authenticated {
    pub identity: Arc<Identity>,
    pub encoded: EncodedIdentity,
}

/// Proof that this request may reach the upstream, with the identity to
/// send along (if any).
pub struct Permit {
    // Private: no code outside this module can make one.
    reason: PermitReason,
    identity: Option<EncodedIdentity>,
}

impl Permit {
    pub fn reason(&self) -> PermitReason {
        self.reason
    }

    /// The identity headers to set, when someone is logged in.
    pub fn identity(&self) -> Option<&EncodedIdentity> {
        self.identity.as_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitReason {
    /// The path matched one of the route's public rules.
    PublicPath,
    /// A logged-in caller.
    Authenticated,
}

/// Why a request may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody is logged in and the path is not public.
    Unauthenticated,
}

/// Decides for a request on `route` with normalised `path`. Public paths
/// pass (with the identity if someone is logged in); every other path
/// needs a caller.
pub fn authorize(
    route: &Route,
    path: &str,
    caller: Option<Authenticated>,
) -> Result<Permit, Refusal> {
    let identity = caller.map(|c| c.encoded);
    if route.is_public(path) {
        return Ok(Permit {
            reason: PermitReason::PublicPath,
            identity,
        });
    }
    match identity {
        Some(identity) => Ok(Permit {
            reason: PermitReason::Authenticated,
            identity: Some(identity),
        }),
        None => Err(Refusal::Unauthenticated),
    }
}
