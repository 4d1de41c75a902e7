//! Authorization decisions. Forwarding takes a [`Permit`], and only this
//! module can make one, so a path that skips the check does not compile.

use std::sync::Arc;

use super::route::Route;
use crate::auth::view::IdentityView;
use crate::session::PassedTokens;

/// Proof that this request may reach the upstream, with the identity to
/// send along (if any).
pub struct Permit {
    // Private fields: no code outside this module can make one.
    view: Option<Arc<IdentityView>>,
    tokens: Option<Arc<PassedTokens>>,
}

impl Permit {
    /// The caller's identity under this route's policy, when logged in.
    pub fn view(&self) -> Option<&Arc<IdentityView>> {
        self.view.as_ref()
    }

    /// Tokens to pass upstream (only when configured and authenticated).
    pub fn tokens(&self) -> Option<&Arc<PassedTokens>> {
        self.tokens.as_ref()
    }
}

/// Why a request may not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody is logged in and the path is not public.
    Unauthenticated,
    /// Logged in, but this route's rules say no (the reason is for the log).
    Forbidden(String),
}

/// Decides for a request on `route` with normalised `path`, given the
/// caller's identity under the route's policy. Public paths pass (with the
/// identity if someone is logged in); other paths need a caller who passes
/// the route's login rules and holds a required group and role.
pub fn authorize(
    route: &Route,
    path: &str,
    view: Option<Arc<IdentityView>>,
    tokens: Option<Arc<PassedTokens>>,
) -> Result<Permit, Refusal> {
    if route.is_public(path) {
        return Ok(Permit { view, tokens });
    }
    let Some(view) = view else {
        return Err(Refusal::Unauthenticated);
    };
    let identity = &view.outcome.identity;
    if !view.outcome.login.allowed {
        let reason = view.outcome.login.reason.clone().unwrap_or_default();
        return Err(Refusal::Forbidden(format!("user `{}`: {reason}", identity.user)));
    }
    if !route.require_groups.is_empty() && !identity.groups.iter().any(|g| route.require_groups.contains(g)) {
        return Err(Refusal::Forbidden(format!(
            "user `{}` holds none of route `{}` require_groups",
            identity.user, route.name
        )));
    }
    if !route.require_roles.is_empty() && !identity.roles.iter().any(|r| route.require_roles.contains(r)) {
        return Err(Refusal::Forbidden(format!(
            "user `{}` holds none of route `{}` require_roles",
            identity.user, route.name
        )));
    }
    Ok(Permit {
        view: Some(view),
        tokens,
    })
}
