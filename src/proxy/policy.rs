//! Authorization decisions. Forwarding takes a [`Permit`], and only this
//! module can make one, so a path that skips the check does not compile.

use super::route::Route;

/// Proof that this request may reach the upstream.
#[derive(Debug)]
pub struct Permit {
    // Private: no code outside this module can make one.
    reason: PermitReason,
}

impl Permit {
    pub fn reason(&self) -> PermitReason {
        self.reason
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitReason {
    /// The path matched one of the route's public rules.
    PublicPath,
}

/// Why a request may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody is logged in and the path is not public.
    Unauthenticated,
}

/// Decides for a request on `route` with normalised `path`. Until a login
/// method exists, only public paths pass: fail closed.
pub fn authorize(route: &Route, path: &str) -> Result<Permit, Refusal> {
    if route.is_public(path) {
        return Ok(Permit {
            reason: PermitReason::PublicPath,
        });
    }
    Err(Refusal::Unauthenticated)
}
