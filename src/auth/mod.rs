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
mod overage;
pub mod redirect;
mod refresh;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::assertion::AssertionSigner;
use crate::clock::Clock;
use crate::config::{Config, ProviderConfig};
use crate::identity::IdentityEngine;
use crate::identity_headers::IdentityHeaders;
use crate::login::provider::Provider;
use crate::metrics::AuthMetrics;
use crate::oidc::http_client::IdpHttp;
use crate::oidc::{OidcError, OidcProvider};
use crate::respond::Pages;
use crate::saml::{SamlProvider, SpUrls};
use crate::session::cookies::{effective_name, CookieSettings};
use crate::session::keys::KeyRing;
use crate::session::{DeriveFn, LiveSession, SessionManager, SessionSettings};
use crate::store::{Store, StoreOptions};
pub use admission::{admit, Admitted, Refusal, Requirements, RouteRules};
pub use caller::Caller;
pub use error::AuthError;
use redirect::RedirectPolicy;
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
    /// How logins find their directory user, when SCIM is on.
    directory_match: Option<crate::config::MatchOn>,
    /// Refuse logins of users the directory does not know.
    require_provisioned: bool,
    bearer: bearer::BearerCache,
    clock: Clock,
}

impl Auth {
    /// Builds the login machinery when providers are configured.
    pub async fn from_config(
        config: &Config,
        signer: Arc<AssertionSigner>,
        pages: Arc<Pages>,
        metrics: AuthMetrics,
        clock: Clock,
    ) -> Result<Option<Self>, AuthSetupError> {
        if config.providers.is_empty() {
            return Ok(None);
        }
        let public_url = config
            .server
            .public_url
            .as_deref()
            .ok_or_else(|| AuthSetupError::PublicUrl("required with providers".into()))?;
        let public = url::Url::parse(public_url).map_err(|e| AuthSetupError::PublicUrl(e.to_string()))?;
        let own_host = public
            .host_str()
            .ok_or_else(|| AuthSetupError::PublicUrl("has no host".into()))?
            .to_ascii_lowercase();
        let base = public_url.trim_end_matches('/').to_string();
        let prefix = config.server.internal_prefix.clone();

        let secrets = config
            .session
            .keys
            .iter()
            .map(|k| k.resolve().map_err(|e| AuthSetupError::Keys(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = KeyRing::new(&secrets).map_err(|e| AuthSetupError::Keys(e.to_string()))?;
        let secure =
            !config.session.insecure_cookie_not_secure && (config.server.tls.is_some() || public.scheme() == "https");
        let cookie = CookieSettings {
            secure,
            domain: config.session.cookie_domain.clone(),
        };
        let cookie_base = effective_name(&config.session.cookie_name, &cookie);
        let engine = Arc::new(IdentityEngine::from_config(config).map_err(|problems| {
            AuthSetupError::Identity(
                problems
                    .into_iter()
                    .map(|(k, m)| format!("{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?);
        let routes = RouteRules::from_config(config, Some(&engine));
        let views = Arc::new(ViewBuilder::new(engine, IdentityHeaders::from_config(&config.headers)));
        let derive: DeriveFn<Views> = {
            let views = Arc::clone(&views);
            Arc::new(move |claims, origin, facts| views.build(claims, origin, facts))
        };
        let password = match &config.store.password {
            Some(source) => Some(
                source
                    .resolve()
                    .map_err(|e| AuthSetupError::Keys(format!("store password: {e}")))?,
            ),
            None => None,
        };
        let options = StoreOptions {
            password,
            max_connections: config.store.max_connections,
        };
        let store = Store::open(&config.store.url, &options).await?;
        let sessions = Arc::new(SessionManager::new(
            store,
            keys,
            SessionSettings {
                cookie_name: cookie_base.clone(),
                cookie,
                idle_timeout: config.session.idle_timeout.0,
                absolute_timeout: config.session.absolute_timeout.0,
                cache_capacity: config.session.cache_capacity,
                cache_max_bytes: config.session.cache_max_bytes.0,
                pass_tokens: config.headers.pass_access_token || config.headers.pass_id_token,
            },
            derive,
            clock.clone(),
        ));
        sessions.spawn_janitor();
        sessions.follow_store();

        let mut providers = Vec::new();
        for provider in &config.providers {
            providers.push(match provider {
                ProviderConfig::Oidc(oidc) => {
                    let tls = crate::tls::client_config(oidc.ca_file.as_deref())?;
                    let http = IdpHttp::new(tls, Duration::from_secs(10));
                    Provider::Oidc(Arc::new(OidcProvider::new(oidc, http, clock.clone())?))
                }
                ProviderConfig::Saml(saml) => {
                    let tls = crate::tls::client_config(saml.ca_file.as_deref())?;
                    let http = IdpHttp::new(tls, Duration::from_secs(10));
                    let urls = SpUrls {
                        base: &base,
                        prefix: &prefix,
                    };
                    Provider::Saml(Arc::new(SamlProvider::new(saml, urls, http, clock.clone())?))
                }
            });
        }
        Ok(Some(Self {
            providers,
            sessions,
            urls: Urls {
                callback: format!("{base}{prefix}/callback"),
                logged_out: format!("{base}{prefix}/logged-out"),
                base,
                prefix,
            },
            redirects: RedirectPolicy {
                own_host,
                allowed: config.session.allowed_redirect_domains.clone(),
            },
            cookie_base,
            login_timeout: i64::try_from(config.session.login_timeout.0.as_secs()).unwrap_or(600),
            views,
            max_claims_bytes: usize::try_from(config.session.max_claims_size.0).unwrap_or(usize::MAX),
            routes,
            signer,
            pages,
            metrics,
            refresh_before: i64::try_from(config.session.refresh_before.0.as_secs()).unwrap_or(60),
            directory_match: config.scim.enabled.then_some(config.scim.match_on),
            require_provisioned: config.scim.enabled && config.scim.require_provisioned,
            bearer: bearer::BearerCache::new(),
            clock,
        }))
    }

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
                return Ok(self.bearer(token).await.map(Caller::Bearer));
            }
        }
        Ok(None)
    }

    async fn session(&self, headers: &HeaderMap) -> Result<Option<Arc<LiveSession<Views>>>, AuthError> {
        let Some(live) = self.sessions.from_request(headers).await? else {
            return Ok(None);
        };
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
