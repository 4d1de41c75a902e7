//! The provider layer, above the protocols: one provider type, whatever
//! the protocol, offering what the login endpoints and sessions need
//! (start a login, where to send a browser to log out, readiness), its
//! construction from the config ([`build_providers`]) and the one loop
//! that keeps every provider's metadata fresh (`refresh.rs`). Finishing a
//! login is protocol-shaped (an OIDC redirect with a code, a SAML POST
//! with a signed response), so each protocol's endpoint calls its own
//! finish and hands back the neutral [`LoginResult`]; token refresh exists
//! only where the protocol has one.
//!
//! The protocols (`oidc`, `saml`) know nothing of this module. A new
//! protocol is one more folder, one more variant here (with its arm in
//! [`build_providers`] and its one refresh), and one endpoint file.
//!
//! [`LoginResult`]: crate::login::LoginResult

mod build;
pub(crate) mod refresh;

use std::sync::Arc;

use crate::login::pending::{random_key, ProtocolState};
use crate::login::{AssuranceAsk, LogoutContext};
use crate::oidc::OidcProvider;
use crate::saml::SamlProvider;
pub use build::{build_providers, ProviderSetupError};

/// A configured identity provider.
#[derive(Clone)]
pub enum Provider {
    Oidc(Arc<OidcProvider>),
    Saml(Arc<SamlProvider>),
}

/// Where to send the browser to log in, and what to remember meanwhile.
pub struct LoginStart {
    /// The URL to redirect to.
    pub redirect: String,
    /// The key the browser brings back (OIDC `state`, SAML `RelayState`).
    pub key: String,
    pub state: ProtocolState,
}

/// Why a login could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The IdP did not answer (a 503 for the user, retried later).
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    /// The IdP answered, or its answer was, not acceptable.
    #[error("{0}")]
    Failed(String),
}

impl Provider {
    pub fn name(&self) -> &str {
        match self {
            Self::Oidc(p) => &p.name,
            Self::Saml(p) => &p.name,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            Self::Oidc(p) => &p.display_name,
            Self::Saml(p) => &p.display_name,
        }
    }

    /// The IdP's own name: OIDC issuer, SAML entity id.
    pub fn issuer(&self) -> String {
        match self {
            Self::Oidc(p) => p.issuer.clone(),
            Self::Saml(p) => p.idp_entity_id().unwrap_or_default(),
        }
    }

    pub fn oidc(&self) -> Option<&Arc<OidcProvider>> {
        match self {
            Self::Oidc(p) => Some(p),
            Self::Saml(_) => None,
        }
    }

    pub fn saml(&self) -> Option<&Arc<SamlProvider>> {
        match self {
            Self::Saml(p) => Some(p),
            Self::Oidc(_) => None,
        }
    }

    /// Starts a login: where to send the browser and what to remember.
    /// `ask` is what the login must prove (a route's `acr` and `max_age`;
    /// empty for a plain login).
    pub async fn start_login(&self, callback: &str, ask: &AssuranceAsk) -> Result<LoginStart, LoginError> {
        match self {
            Self::Oidc(p) => {
                let start = p.start_login(callback, ask).await.map_err(|e| {
                    if e.is_unreachable() {
                        LoginError::Unreachable(e.to_string())
                    } else {
                        LoginError::Failed(e.to_string())
                    }
                })?;
                Ok(LoginStart {
                    redirect: start.url,
                    key: start.state,
                    state: ProtocolState::Oidc {
                        nonce: start.nonce,
                        pkce_verifier: start.pkce_verifier,
                    },
                })
            }
            Self::Saml(p) => {
                let key = random_key();
                let (redirect, request_id) = p.authn_request_redirect(&key, ask).map_err(|e| match e {
                    crate::saml::SamlError::NoMetadata => LoginError::Unreachable(e.to_string()),
                    e => LoginError::Failed(e.to_string()),
                })?;
                Ok(LoginStart {
                    redirect,
                    key,
                    state: ProtocolState::Saml { request_id },
                })
            }
        }
    }

    /// Where to send the browser after a local logout so the IdP ends its
    /// session too, if the provider supports it.
    pub async fn logout_redirect(&self, context: &LogoutContext<'_>) -> Option<String> {
        match self {
            Self::Oidc(p) => p.end_session_url(context.id_token, context.post_logout).await,
            Self::Saml(p) => p.logout_request_redirect(context),
        }
    }

    /// Readiness: what to say about this provider's metadata.
    pub fn status(&self) -> &'static str {
        let loaded = match self {
            Self::Oidc(p) => p.has_metadata(),
            Self::Saml(p) => p.has_metadata(),
        };
        if loaded {
            "metadata loaded"
        } else {
            "metadata not fetched yet (logins retry)"
        }
    }

    /// Keeps the IdP's metadata and keys fresh for the provider's life
    /// (SAML metadata read from a file is read once, at start).
    pub fn spawn_metadata_refresh(&self) {
        match self {
            Self::Oidc(p) => refresh::spawn(p),
            Self::Saml(p) if p.metadata_from_url() => refresh::spawn(p),
            Self::Saml(_) => {}
        }
    }
}
