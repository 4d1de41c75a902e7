//! What every login protocol hands back, whatever it is: the neutral
//! result of a finished login or refresh ([`LoginResult`]), the tokens an
//! OpenID provider issued, the state of a login in progress ([`pending`])
//! and what a logout tells the IdP ([`LogoutContext`]). Protocol modules
//! (`oidc`, `saml`) produce and take these and know nothing of sessions or
//! the request path; this module is the floor below them and below
//! `session`, and imports none of them.

pub mod pending;

// How a login was made is part of who someone is: the pure judgement lives
// with the identity engine; every protocol hands it back here.
pub use crate::identity::assurance::{AssuranceAsk, Authentication};

use serde::{Deserialize, Serialize};

use crate::identity::Claims;

/// Tokens of a session, encrypted at rest and never logged. SAML logins
/// have none.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens([redacted])")
    }
}

/// Tokens ready to pass upstream (`[headers] pass_access_token`,
/// `pass_id_token`), kept in memory only when one of those is on.
#[derive(Debug, Default)]
pub struct PassedTokens {
    pub access: Option<http::HeaderValue>,
    pub id: Option<http::HeaderValue>,
}

impl PassedTokens {
    pub fn from_tokens(tokens: &Tokens) -> Self {
        let sensitive = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| http::HeaderValue::from_str(t).ok())
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
        };
        Self {
            access: sensitive(&tokens.access_token),
            id: sensitive(&tokens.id_token),
        }
    }
}

/// What a finished login (or refresh) hands to the session layer.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The configured provider's name.
    pub provider: String,
    /// The IdP's own name: OIDC `iss`, SAML entity id.
    pub issuer: String,
    /// Who the IdP says this is: OIDC `sub`, SAML NameID value.
    pub subject: String,
    /// The IdP's session: OIDC `sid`, SAML `SessionIndex`, for single logout.
    pub idp_session: Option<String>,
    /// Protocol data a logout needs later (SAML: the NameID with its format
    /// and qualifiers), as the protocol module encoded it.
    pub logout_hint: Option<String>,
    /// When the IdP says its session ends (SAML `SessionNotOnOrAfter`).
    pub idp_session_end: Option<i64>,
    /// The claims the identity is computed from.
    pub merged: Claims,
    /// JSON snapshot of what the IdP sent (no tokens), for the debug view.
    pub claims: serde_json::Value,
    pub tokens: Tokens,
    /// How the user logged in, as the IdP signed it (`acr`, `amr`,
    /// `auth_time`; SAML's AuthnStatement).
    pub authentication: Authentication,
}

/// What a logout needs to tell the IdP about the session that ends.
pub struct LogoutContext<'a> {
    pub id_token: Option<&'a str>,
    pub subject: &'a str,
    pub idp_session: Option<&'a str>,
    pub logout_hint: Option<&'a str>,
    /// Where the IdP sends the browser back to.
    pub post_logout: &'a str,
}

/// The merged claims stored in a record's snapshot.
pub fn merged_claims(snapshot: &str) -> Claims {
    serde_json::from_str::<serde_json::Value>(snapshot)
        .ok()
        .and_then(|v| v.get("merged").and_then(|m| m.as_object()).cloned())
        .unwrap_or_default()
}
