//! Facts carry their source. The SCIM directory describes the users of one
//! provider (`[scim] provider`): its groups, roles and deactivations apply
//! to that provider's logins only, found by a match key that names the
//! provider, because the same email through another IdP is another person.
//! And a session is only as good as the provider that vouched for it: once
//! that provider is removed (or its issuer changed), its sessions end at
//! start and at every reload, and no replica recognises them meanwhile.

use std::sync::Arc;

use super::view::{ViewBuilder, Views};
use crate::config::{Config, MatchOn};
use crate::identity::Claims;
use crate::providers::Provider;
use crate::session::{DeriveFn, Origin};
use crate::store::directory::{key_for_external_id, key_for_user_name, DirectoryFacts};
use crate::store::{SessionStore, StoreError};

/// The directory's provider, and how that provider's logins find their
/// directory user. Exists only with SCIM on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryBinding {
    pub provider: String,
    pub match_on: MatchOn,
    /// Refuse the bound provider's logins the directory does not know.
    pub require_provisioned: bool,
}

impl DirectoryBinding {
    pub fn from_config(config: &Config) -> Option<Self> {
        let names: Vec<&str> = config.providers.iter().map(|p| p.name()).collect();
        let provider = config.scim.bound_provider(&names)?;
        Some(Self {
            provider: provider.to_string(),
            match_on: config.scim.match_on,
            require_provisioned: config.scim.require_provisioned,
        })
    }

    /// Whether the directory speaks of `provider`'s users.
    pub fn binds(&self, provider: &str) -> bool {
        self.provider == provider
    }

    /// The directory key a login of `provider` matches: none for another
    /// provider's login (never a key that could equal a bound one), nor
    /// for a login without the claim `match_on` names.
    pub fn key(&self, provider: &str, claims: &Claims, subject: &str) -> Option<String> {
        if !self.binds(provider) {
            return None;
        }
        let value = match self.match_on {
            MatchOn::Email => claims.get("email").and_then(|v| v.as_str()),
            MatchOn::PreferredUsername => claims.get("preferred_username").and_then(|v| v.as_str()),
            MatchOn::Subject => Some(subject),
        }
        .filter(|v| !v.is_empty())?;
        Some(match self.match_on {
            MatchOn::Subject => key_for_external_id(&self.provider, value),
            _ => key_for_user_name(&self.provider, value),
        })
    }

    /// What a login needs to carry to be matched (for refusals).
    pub fn claim_name(&self) -> &'static str {
        match self.match_on {
            MatchOn::Email => "email",
            MatchOn::PreferredUsername => "preferred_username",
            MatchOn::Subject => "subject",
        }
    }

    /// The keys a directory user's sessions may carry: bound ones, and
    /// those of sessions made before the binding existed (which may be of
    /// any provider: ending or re-deriving them too errs on the safe side).
    pub fn keys_of(&self, user_name: &str, external_id: Option<&str>) -> Vec<String> {
        let mut keys = vec![
            key_for_user_name(&self.provider, user_name),
            format!("name:{}", user_name.to_lowercase()),
        ];
        if let Some(external_id) = external_id {
            keys.push(key_for_external_id(&self.provider, external_id));
            keys.push(format!("ext:{external_id}"));
        }
        keys
    }
}

/// The directory facts a session of `origin` may see: none unless the
/// directory is bound to its provider (a session from before a change of
/// `[scim] provider` still carries the old provider's key).
pub fn bound_facts<'a>(
    binding: Option<&DirectoryBinding>,
    origin: Origin<'_>,
    facts: Option<&'a DirectoryFacts>,
) -> Option<&'a DirectoryFacts> {
    facts.filter(|_| binding.is_some_and(|b| b.binds(origin.provider)))
}

/// How a session's views are made: its claims, and the directory's facts
/// only when the directory is bound to its provider.
pub fn derive_views(views: Arc<ViewBuilder>, config: &Config) -> DeriveFn<Views> {
    let binding = DirectoryBinding::from_config(config);
    Arc::new(move |claims, origin, facts| views.build(claims, origin, bound_facts(binding.as_ref(), origin, facts)))
}

/// Whether a configured provider still vouches for sessions it made under
/// `issuer`: its name and its issuer both match. A SAML provider's issuer
/// (its entity id) is known once its metadata is read; until then its name
/// is all there is to compare.
pub fn vouches(providers: &[Provider], name: &str, issuer: &str) -> bool {
    providers.iter().any(|p| {
        p.name() == name
            && match p {
                Provider::Oidc(oidc) => oidc.issuer == issuer,
                Provider::Saml(saml) => saml.idp_entity_id_is(issuer).unwrap_or(true),
            }
    })
}

/// Ends every stored session whose provider is gone or whose issuer
/// changed, on every replica: at start and after each reload. Failures are
/// logged; the request path refuses those sessions regardless.
pub async fn end_orphaned_sessions(auth: Option<&Arc<super::Auth>>) {
    let Some(auth) = auth else { return };
    match end_orphaned(auth).await {
        Ok((0, _)) => {}
        Ok((ended, why)) => {
            tracing::warn!(
                ended,
                why = %why.join("; "),
                "sessions ended: their provider is no longer configured or its issuer changed"
            );
            crate::audit!(crate::audit::Kind::SessionEnded, by = "reload", count = ended, reason = %why.join("; "));
        }
        Err(e) => tracing::error!(
            error = %e,
            "could not end the sessions of removed providers; they are refused on every request meanwhile"
        ),
    }
}

async fn end_orphaned(auth: &super::Auth) -> Result<(usize, Vec<String>), StoreError> {
    let store = auth.sessions.store();
    let mut ended = 0;
    let mut why = Vec::new();
    for (provider, issuer) in store.session_origins().await? {
        if vouches(&auth.providers, &provider, &issuer) {
            continue;
        }
        let keys = store.delete_sessions_from(&provider, &issuer).await?;
        for key in &keys {
            auth.sessions.forget(key).await;
        }
        let reason = if auth.provider(&provider).is_some() {
            "issuer changed"
        } else {
            "provider removed"
        };
        why.push(format!("{} of `{provider}` ({issuer}): {reason}", keys.len()));
        ended += keys.len();
    }
    Ok((ended, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::directory::DirectoryFacts;

    fn binding(match_on: MatchOn) -> DirectoryBinding {
        DirectoryBinding {
            provider: "corp".into(),
            match_on,
            require_provisioned: true,
        }
    }

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).expect("claims")
    }

    #[test]
    fn only_the_bound_providers_logins_get_a_key_and_it_names_the_provider() {
        let b = binding(MatchOn::Email);
        let c = claims(serde_json::json!({"email": "Bob@Example.com"}));
        assert_eq!(b.key("corp", &c, "s1").as_deref(), Some("name@corp:bob@example.com"));
        assert_eq!(
            b.key("other", &c, "s1"),
            None,
            "the same email elsewhere is another person"
        );
        assert_eq!(
            b.key("corp", &claims(serde_json::json!({})), "s1"),
            None,
            "no claim, no key"
        );
        assert_eq!(b.key("corp", &claims(serde_json::json!({"email": ""})), "s1"), None);
        let b = binding(MatchOn::Subject);
        assert_eq!(b.key("corp", &c, "s:1").as_deref(), Some("ext@corp:s:1"));
        let b = binding(MatchOn::PreferredUsername);
        let c = claims(serde_json::json!({"preferred_username": "Bob"}));
        assert_eq!(b.key("corp", &c, "s1").as_deref(), Some("name@corp:bob"));
    }

    #[test]
    fn a_directory_users_keys_include_the_bound_one_and_pre_binding_ones() {
        let b = binding(MatchOn::Email);
        assert_eq!(
            b.keys_of("Bob@Example.com", Some("x1")),
            [
                "name@corp:bob@example.com",
                "name:bob@example.com",
                "ext@corp:x1",
                "ext:x1"
            ]
        );
        assert_eq!(b.keys_of("bob", None), ["name@corp:bob", "name:bob"]);
    }

    #[test]
    fn facts_reach_only_the_bound_providers_sessions() {
        let facts = DirectoryFacts {
            user_id: "u1".into(),
            active: true,
            resource: "{}".into(),
            groups: vec!["admins".into()],
        };
        let b = binding(MatchOn::Email);
        let authentication = crate::login::Authentication::default();
        let origin = |provider| Origin {
            provider,
            issuer: "https://idp",
            posture: &crate::access::posture::NONE,
            authentication: &authentication,
        };
        assert!(bound_facts(Some(&b), origin("corp"), Some(&facts)).is_some());
        assert!(bound_facts(Some(&b), origin("other"), Some(&facts)).is_none());
        assert!(bound_facts(None, origin("corp"), Some(&facts)).is_none(), "SCIM off");
    }
}
