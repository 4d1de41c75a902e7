//! Claims in, [`Identity`] out: who the upstream is told the caller is.
//!
//! Pure: no I/O, so it runs the same at login, at refresh, for bearer
//! tokens and in `doorward explain`. This first version takes the user,
//! email and groups from their usual claims; the full mapping engine
//! (claim paths, mapping, filters, allowlists, defaults) plugs in here.

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
    pub orgs: Vec<String>,
}

fn string_claim(claims: &Claims, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Every string of a claim that may be an array or a single string.
fn string_list(claims: &Claims, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Computes the identity from (merged) claims.
pub fn from_claims(claims: &Claims) -> Identity {
    let subject = string_claim(claims, "sub").unwrap_or_default();
    let email = string_claim(claims, "email");
    let preferred_username = string_claim(claims, "preferred_username");
    let user = email
        .clone()
        .or_else(|| preferred_username.clone())
        .unwrap_or_else(|| subject.clone());
    let mut groups = string_list(claims, "groups");
    groups.sort();
    groups.dedup();
    let mut roles = string_list(claims, "roles");
    roles.sort();
    roles.dedup();
    Identity {
        subject,
        user,
        email,
        preferred_username,
        groups,
        roles,
        orgs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn user_prefers_email_then_username_then_subject() {
        let id = from_claims(&claims(
            serde_json::json!({"sub": "1", "email": "a@x.com", "preferred_username": "a"}),
        ));
        assert_eq!(id.user, "a@x.com");
        let id = from_claims(&claims(
            serde_json::json!({"sub": "1", "preferred_username": "a"}),
        ));
        assert_eq!(id.user, "a");
        let id = from_claims(&claims(serde_json::json!({"sub": "1"})));
        assert_eq!(id.user, "1");
    }

    #[test]
    fn groups_take_every_value_and_tolerate_a_single_string_or_absence() {
        let id = from_claims(&claims(
            serde_json::json!({"sub": "1", "groups": ["b", "a", "b"]}),
        ));
        assert_eq!(id.groups, ["a", "b"]);
        let id = from_claims(&claims(serde_json::json!({"sub": "1", "groups": "solo"})));
        assert_eq!(id.groups, ["solo"]);
        let id = from_claims(&claims(serde_json::json!({"sub": "1"})));
        assert!(id.groups.is_empty());
    }
}
