//! The admission gate: the one function that turns a recognised caller
//! into an identity doorward will vouch for.
//!
//! [`Admitted`] can only be made by [`admit`], and it is the only way to
//! reach a caller's identity outside `auth`: the headers, the signed
//! assertion, the JSON of `/userinfo`, the debug view and token
//! pass-through all take it. A new way in (a protocol, an endpoint, a SCIM
//! change) therefore cannot emit identity without passing the same rules:
//! `[identity.login]` globally, then the route's own login rules, its
//! provider pin and its required groups and roles.

use std::sync::Arc;

use http::HeaderValue;

use super::caller::Caller;
use super::view::IdentityView;
use crate::access::PostureRule;
use crate::assertion::AssertionSigner;
pub use crate::identity::assurance::ASSURANCE_SKEW;
use crate::identity::Identity;
use crate::identity_headers::EncodedIdentity;
use crate::login::{AssuranceAsk, PassedTokens};

/// A route's access rules, from the config: what [`Requirements`] are
/// borrowed from, for the proxy and for `/auth?route=NAME` alike.
#[derive(Debug, Clone)]
pub struct RouteRules {
    pub name: String,
    /// Position in the config: the route's assertion cache slot.
    pub index: usize,
    pub policy: usize,
    pub provider: Option<String>,
    /// Whether bearer tokens are taken at all.
    pub bearer: bool,
    pub require_groups: Vec<String>,
    pub require_roles: Vec<String>,
    /// Assurance levels accepted when a shared signal reported one.
    pub require_assurance: Vec<String>,
    /// Refuse sessions whose device a shared signal called not compliant.
    pub require_compliant_device: bool,
    /// How the login must have been made (`acr`, `max_age`).
    pub assurance: AssuranceAsk,
    /// `aud` of the signed assertion.
    pub audience: String,
}

impl RouteRules {
    /// One per configured route, in config order.
    pub fn from_config(config: &crate::config::Config, engine: Option<&crate::identity::IdentityEngine>) -> Vec<Self> {
        config
            .routes
            .iter()
            .enumerate()
            .map(|(index, r)| Self {
                name: r.name.clone(),
                index,
                policy: engine.map_or(0, |e| e.policy_of_route(index)),
                provider: r.provider.clone(),
                bearer: r.bearer,
                require_groups: r.require_groups.clone(),
                require_roles: r.require_roles.clone(),
                require_assurance: r.require_assurance.clone(),
                require_compliant_device: r.require_compliant_device,
                assurance: AssuranceAsk {
                    acr: r.acr.clone(),
                    max_age: r.max_age.map(|d| d.0.as_secs()),
                    amr: r.amr.clone(),
                },
                audience: r.audience.clone().unwrap_or_else(|| r.name.clone()),
            })
            .collect()
    }

    /// What the route asks of a caller at `now` (the clock's seconds:
    /// `max_age` is judged against it).
    pub fn requirements(&self, now: i64) -> Requirements<'_> {
        Requirements {
            assurance: &self.assurance,
            now,
            policy: self.policy,
            provider: self.provider.as_deref(),
            require_groups: &self.require_groups,
            require_roles: &self.require_roles,
            posture: PostureRule {
                assurance: &self.require_assurance,
                compliant_device: self.require_compliant_device,
            },
            route: &self.name,
        }
    }
}

/// An ask for nothing: endpoints without a route.
static NO_ASSURANCE: AssuranceAsk = AssuranceAsk {
    acr: Vec::new(),
    max_age: None,
    amr: Vec::new(),
};

/// What a route (or an endpoint) asks of a caller.
#[derive(Debug, Clone, Copy)]
pub struct Requirements<'a> {
    /// Which identity policy applies (0 = global `[identity]`).
    pub policy: usize,
    /// Only callers vouched for by this provider.
    pub provider: Option<&'a str>,
    pub require_groups: &'a [String],
    pub require_roles: &'a [String],
    /// What shared signals must not have said of the session.
    pub posture: PostureRule<'a>,
    /// How the login must have been made.
    pub assurance: &'a AssuranceAsk,
    /// The time `max_age` is judged at.
    pub now: i64,
    /// For log lines.
    pub route: &'a str,
}

impl Default for Requirements<'_> {
    fn default() -> Self {
        Self {
            policy: 0,
            provider: None,
            require_groups: &[],
            require_roles: &[],
            posture: PostureRule::default(),
            assurance: &NO_ASSURANCE,
            now: 0,
            route: "",
        }
    }
}

/// Why a recognised caller is not admitted. The reason is for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The route is pinned to another provider: log in with that one.
    WrongProvider { pinned: String, caller: String },
    /// `[identity.login]` (global or the route's) refuses this user.
    NotAllowed(String),
    /// Allowed to log in, but the route wants a group or role they lack.
    MissingGrant(String),
    /// A shared signal lowered the session below what the route needs:
    /// log in again.
    StepUp(String),
    /// The login was not made as the route asks (`acr`, `max_age`): step
    /// up at the caller's own provider (browsers), or an RFC 9470
    /// challenge (bearer tokens).
    Assurance(String),
}

impl Refusal {
    /// Which kind of rule refused, for the audit trail (never the rule).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongProvider { .. } => "provider_pin",
            Self::NotAllowed(_) => "login_policy",
            Self::MissingGrant(_) => "required_grant",
            Self::StepUp(_) => "posture",
            Self::Assurance(_) => "assurance",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongProvider { pinned, caller } => {
                write!(
                    f,
                    "the route takes provider `{pinned}`; the caller came from `{caller}`"
                )
            }
            Self::NotAllowed(reason) | Self::MissingGrant(reason) | Self::StepUp(reason) | Self::Assurance(reason) => {
                f.write_str(reason)
            }
        }
    }
}

/// Proof that a caller passed the gate for one set of requirements, with
/// the identity to send along.
pub struct Admitted {
    // Private: only `admit` makes one.
    view: Arc<IdentityView>,
    tokens: Option<Arc<PassedTokens>>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl Admitted {
    pub fn identity(&self) -> &Identity {
        &self.view.outcome.identity
    }

    /// The encoded identity headers, ready to set.
    pub fn headers(&self) -> &EncodedIdentity {
        &self.view.encoded
    }

    /// The signed assertion for route slot `slot` and `audience` (cached
    /// per identity view until a quarter of its life is left).
    pub fn assertion(&self, signer: &AssertionSigner, slot: usize, audience: &str, now: i64) -> Option<HeaderValue> {
        self.view
            .assertions
            .get(slot, signer, &self.view.outcome.identity, audience, now)
    }

    /// Tokens to pass upstream, when configured.
    pub fn passed_tokens(&self) -> Option<&PassedTokens> {
        self.tokens.as_deref()
    }

    /// The engine's reasons are for the debug view only (inside `auth`).
    pub(in crate::auth) fn view(&self) -> &IdentityView {
        &self.view
    }
}

/// The gate. Order matters only for the reason logged: every check must
/// pass.
pub fn admit(caller: &Caller, needs: &Requirements<'_>) -> Result<Admitted, Refusal> {
    // A pin holds for every kind of caller, cached or not: a session or
    // token from another IdP is not this route's user.
    if let Some(pinned) = needs.provider {
        if caller.provider() != pinned {
            return Err(Refusal::WrongProvider {
                pinned: pinned.to_string(),
                caller: caller.provider().to_string(),
            });
        }
    }
    let views = caller.views();
    let global = views.global();
    if !global.outcome.login.allowed {
        return Err(Refusal::NotAllowed(format!(
            "user `{}`: {}",
            global.outcome.identity.user,
            global.outcome.login.reason.as_deref().unwrap_or("not allowed")
        )));
    }
    let view = views.get(needs.policy);
    // A route's own login rules tighten the global ones, never widen them:
    // both decisions must say yes.
    if !view.outcome.login.allowed {
        return Err(Refusal::NotAllowed(format!(
            "user `{}` on route `{}`: {}",
            view.outcome.identity.user,
            needs.route,
            view.outcome.login.reason.as_deref().unwrap_or("not allowed")
        )));
    }
    let identity = &view.outcome.identity;
    if !needs.require_groups.is_empty() && !identity.groups.iter().any(|g| needs.require_groups.contains(g)) {
        return Err(Refusal::MissingGrant(format!(
            "user `{}` holds none of route `{}` require_groups",
            identity.user, needs.route
        )));
    }
    if !needs.require_roles.is_empty() && !identity.roles.iter().any(|r| needs.require_roles.contains(r)) {
        return Err(Refusal::MissingGrant(format!(
            "user `{}` holds none of route `{}` require_roles",
            identity.user, needs.route
        )));
    }
    if let Some(why) = view.posture.shortfall(needs.posture) {
        return Err(Refusal::StepUp(format!(
            "user `{}` on route `{}`: {why}",
            identity.user, needs.route
        )));
    }
    // Last: a user the route refuses anyway is not sent to step up.
    if let Some(why) = needs
        .assurance
        .shortfall(&identity.authentication, needs.now, ASSURANCE_SKEW)
    {
        return Err(Refusal::Assurance(format!(
            "user `{}` on route `{}`: {why}",
            identity.user, needs.route
        )));
    }
    Ok(Admitted {
        view: Arc::clone(view),
        tokens: caller.passed_tokens().cloned(),
    })
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
