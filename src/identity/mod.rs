//! Claims in, [`Identity`] out: who the upstream is told the caller is.
//!
//! Pure: no I/O, so it runs the same at login, at refresh, for bearer
//! tokens and in `doorward explain`. The rules are in [`engine`]; claim
//! paths in [`claim_path`]; how lists travel in a header in [`header_list`].

pub mod assurance;
pub mod claim_path;
pub mod engine;
pub mod explain;
pub mod header_list;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Claims = Map<String, Value>;

/// The caller as the upstream sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The IdP's stable subject (`sub`).
    pub subject: String,
    /// What `X-Forwarded-User` carries: email, else preferred_username, else sub.
    pub user: String,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// The highest role held, by `[identity.roles] rank`.
    pub role: Option<String>,
    pub orgs: Vec<String>,
    /// The provider that logged this caller in (its configured name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub idp: String,
    /// That provider's own name for itself (OIDC issuer, SAML entity id).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub idp_issuer: String,
    /// How the login was made (acr, amr, auth_time), as the IdP said.
    #[serde(default, skip_serializing_if = "is_default")]
    pub authentication: assurance::Authentication,
}

fn is_default(authentication: &assurance::Authentication) -> bool {
    *authentication == assurance::Authentication::default()
}

/// The domain of a plain `local@domain` address, lower-cased; None for
/// anything else (`a@b.com@evil.com`, quoted locals, empty parts).
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.split_once('@')?;
    let valid_domain = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let valid_local =
        !local.is_empty() && !local.contains(['"', ' ', '(', ')', ',', ':', ';', '<', '>', '[', ']', '\\']);
    (valid_domain && valid_local).then(|| domain.to_ascii_lowercase())
}

/// Every policy of a deployment: the global `[identity]` first, then one
/// per route that overrides part of it.
#[derive(Debug)]
pub struct IdentityEngine {
    pub policies: Vec<engine::Policy>,
    route_policy: Vec<usize>,
}

impl IdentityEngine {
    /// Compiles the policies. Problems come back as (key path, message).
    pub fn from_config(config: &crate::config::Config) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut policies = Vec::new();
        match engine::Policy::compile(&config.identity) {
            Ok(policy) => policies.push(policy),
            Err(found) => problems.extend(found.into_iter().map(|(k, m)| (format!("identity.{k}"), m))),
        }
        let mut route_policy = Vec::with_capacity(config.routes.len());
        for (i, route) in config.routes.iter().enumerate() {
            match route.identity.as_ref().filter(|o| !o.is_empty()) {
                None => route_policy.push(0),
                Some(over) => match engine::Policy::compile(&config.identity.overlay(over)) {
                    Ok(policy) => {
                        route_policy.push(policies.len());
                        policies.push(policy);
                    }
                    Err(found) => {
                        problems.extend(found.into_iter().map(|(k, m)| (format!("route[{i}].identity.{k}"), m)));
                        route_policy.push(0);
                    }
                },
            }
        }
        if problems.is_empty() {
            Ok(Self { policies, route_policy })
        } else {
            Err(problems)
        }
    }

    /// The policy index a route uses (0 = global).
    pub fn policy_of_route(&self, route: usize) -> usize {
        self.route_policy.get(route).copied().unwrap_or(0)
    }

    pub fn global(&self) -> &engine::Policy {
        &self.policies[0]
    }

    /// One outcome per policy, for a session or bearer token.
    pub fn compute_all(&self, claims: &Claims, directory: Option<&engine::Directory>) -> Vec<engine::Outcome> {
        self.policies
            .iter()
            .map(|p| p.compute_with(claims, directory, false))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_are_parsed_strictly() {
        assert_eq!(email_domain("a@Example.com").as_deref(), Some("example.com"));
        assert_eq!(email_domain("a@b.com@evil.com"), None);
        assert_eq!(email_domain("\"a@b.com\"@evil.com"), None);
        assert_eq!(email_domain("@example.com"), None);
        assert_eq!(email_domain("a@"), None);
        assert_eq!(email_domain("a@example.com."), None);
        assert_eq!(email_domain("a@exa mple.com"), None);
        assert_eq!(email_domain("no-at-sign"), None);
    }
}
