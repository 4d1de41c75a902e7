//! Authentication: who is calling, and whether doorward vouches for them.
//!
//! [`Auth::recognise`] finds the caller (a session cookie, or a bearer JWT
//! where allowed) and refreshes tokens about to expire; [`admission`] is
//! the gate every identity passes before it leaves doorward; [`endpoints`]
//! are the login, logout and introspection endpoints.

pub mod admission;
mod bearer;
pub mod caller;
mod directory;
pub mod endpoints;
mod error;
mod notifier;
mod overage;
pub mod provenance;
pub mod redirect;
mod refresh;
mod setup;
mod signals;
pub mod view;

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::assertion::AssertionSigner;
use crate::clock::Clock;
use crate::identity::IdentityEngine;
use crate::metrics::AuthMetrics;
use crate::oidc::{OidcError, OidcProvider};
use crate::providers::Provider;
use crate::respond::Pages;
use crate::saml::SamlProvider;
use crate::session::{LiveSession, SessionManager};
pub use admission::{admit, Admitted, Refusal, Requirements, RouteRules};
pub use caller::Caller;
pub use error::{AuthError, StepUp, BEARER_CHALLENGE};
pub use provenance::end_orphaned_sessions;
use redirect::RedirectPolicy;
pub use setup::{AuthContext, AuthSwap};
use view::{ViewBuilder, Views};

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("session keys: {0}")]
    Keys(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("provider: {0}")]
    Provider(#[from] OidcError),
    #[error("{0}")]
    Saml(#[from] crate::saml::SamlSetupError),
    #[error("TLS for identity providers: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("public_url: {0}")]
    PublicUrl(String),
    #[error("identity: {0}")]
    Identity(String),
}

/// The sessions of this deployment, with identity views cached beside them.
pub type Sessions = SessionManager<Views>;

/// URLs the login protocols hand to identity providers.
#[derive(Debug, Clone)]
pub struct Urls {
    /// `public_url` without a trailing slash.
    pub base: String,
    /// The internal prefix (`/_doorward`).
    pub prefix: String,
    pub callback: String,
    pub logged_out: String,
}

pub struct Auth {
    pub providers: Vec<Provider>,
    pub sessions: Arc<Sessions>,
    pub urls: Urls,
    pub redirects: RedirectPolicy,
    pub cookie_base: String,
    pub login_timeout: i64,
    pub views: Arc<ViewBuilder>,
    /// Largest claims snapshot a login may store.
    pub max_claims_bytes: usize,
    /// Every route's access rules, for `/auth?route=NAME`.
    pub routes: Vec<RouteRules>,
    /// Signs assertions handed out by forward-auth.
    pub signer: Arc<AssertionSigner>,
    /// doorward's own pages (chooser, sign-out), with the operator's branding.
    pub pages: Arc<Pages>,
    /// Login, refresh, logout and bearer counters (the process registry's).
    pub metrics: AuthMetrics,
    refresh_before: i64,
    /// The directory's provider and how its logins find their directory
    /// user, when SCIM is on.
    directory: Option<provenance::DirectoryBinding>,
    bearer: bearer::BearerCache,
    clock: Clock,
}

impl Auth {
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// The OpenID Connect providers (bearer tokens, back-channel logout).
    pub fn oidc_providers(&self) -> impl Iterator<Item = &Arc<OidcProvider>> {
        self.providers.iter().filter_map(Provider::oidc)
    }

    /// The SAML providers.
    pub fn saml_providers(&self) -> impl Iterator<Item = &Arc<SamlProvider>> {
        self.providers.iter().filter_map(Provider::saml)
    }

    pub fn engine(&self) -> &IdentityEngine {
        &self.views.engine
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Fetches every provider's metadata at start and keeps it fresh;
    /// failures are logged and retried.
    pub fn warm_up(self: &Arc<Self>) {
        for provider in &self.providers {
            provider.spawn_metadata_refresh();
        }
    }

    /// The caller, from a session cookie or (when allowed) a bearer token.
    /// `Ok(None)`: nobody recognisable. `Err`: the store did not answer,
    /// so doorward cannot tell (a 503, never a logout).
    pub async fn recognise(&self, headers: &HeaderMap, allow_bearer: bool) -> Result<Option<Caller>, AuthError> {
        if let Some(session) = self.session(headers).await? {
            return Ok(Some(Caller::Session(session)));
        }
        if allow_bearer {
            if let Some(token) = bearer_token(headers) {
                return Ok(self.bearer(token).await?.map(Caller::Bearer));
            }
        }
        Ok(None)
    }

    async fn session(&self, headers: &HeaderMap) -> Result<Option<Arc<LiveSession<Views>>>, AuthError> {
        let Some(live) = self.sessions.from_request(headers).await? else {
            return Ok(None);
        };
        // A removed provider (or one whose issuer changed) vouches for
        // nobody, even before the store has ended its sessions.
        if !provenance::vouches(&self.providers, &live.provider, &live.issuer) {
            return Ok(None);
        }
        match (live.has_refresh_token, live.token_expires_at) {
            (true, Some(expires)) if expires - self.clock.now() <= self.refresh_before => self.refresh(live).await,
            _ => Ok(Some(live)),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, if that is what was sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
