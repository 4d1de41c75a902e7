//! Authentication: who is calling. A session cookie, or a bearer JWT from a
//! configured provider; refreshes tokens that are about to expire (single
//! flight per session) so identity follows the IdP.

pub mod endpoints;
mod pages;
pub mod pending;
pub mod redirect;
pub mod view;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::assertion::AssertionCache;
use crate::config::Config;
use crate::identity::{Claims, Identity, IdentityEngine};
use crate::oidc::http_client::IdpHttp;
use crate::oidc::{OidcError, OidcProvider};
use crate::proxy::identity_headers::IdentityHeaders;
use crate::session::cookies::{effective_name, CookieSettings};
use crate::session::keys::KeyRing;
use crate::session::{now, LiveSession, LoginResult, SessionManager, SessionSettings};
use crate::store::SqliteStore;
use redirect::RedirectPolicy;
use view::{IdentityView, Views, ViewsFn};

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("session keys: {0}")]
    Keys(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("provider: {0}")]
    Provider(#[from] OidcError),
    #[error("TLS for identity providers: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("public_url: {0}")]
    PublicUrl(String),
    #[error("identity: {0}")]
    Identity(String),
}

/// Who a request is from, once authenticated.
pub enum Caller {
    Session(Arc<LiveSession>),
    Bearer(Arc<BearerLogin>),
}

impl Caller {
    pub fn views(&self) -> &Views {
        match self {
            Self::Session(session) => &session.views,
            Self::Bearer(bearer) => &bearer.views,
        }
    }

    /// The view under policy `index` (0 = global).
    pub fn view(&self, index: usize) -> &Arc<IdentityView> {
        let views = self.views();
        views.get(index).unwrap_or(&views[0])
    }

    pub fn identity(&self) -> &Identity {
        &self.view(0).outcome.identity
    }

    /// Tokens to pass upstream, when configured: the session's, or the
    /// bearer token itself.
    pub fn passed_tokens(&self) -> Option<Arc<crate::session::PassedTokens>> {
        match self {
            Self::Session(session) => session.passed_tokens.clone(),
            Self::Bearer(bearer) => bearer.passed_tokens.clone(),
        }
    }
}

/// A verified bearer token, cached until it expires.
pub struct BearerLogin {
    pub views: Views,
    expires_at: i64,
    passed_tokens: Option<Arc<crate::session::PassedTokens>>,
}

pub struct Auth {
    pub providers: Vec<Arc<OidcProvider>>,
    pub sessions: Arc<SessionManager>,
    pub callback_url: String,
    pub logged_out_url: String,
    pub redirects: RedirectPolicy,
    pub cookie_base: String,
    pub login_timeout: i64,
    pub engine: Arc<IdentityEngine>,
    views_fn: ViewsFn,
    refresh_before: i64,
    bearer_cache: Cache<[u8; 32], Arc<BearerLogin>>,
    /// Next time a refresh may be retried after the IdP was unreachable.
    refresh_backoff_until: AtomicI64,
}

/// How long to wait before retrying a refresh that could not reach the IdP.
const REFRESH_RETRY: i64 = 30;

impl Auth {
    /// Builds the login machinery when providers are configured.
    pub async fn from_config(config: &Config) -> Result<Option<Self>, AuthSetupError> {
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
        let base = public_url.trim_end_matches('/');
        let prefix = &config.server.internal_prefix;

        let secrets = config
            .session
            .keys
            .iter()
            .map(|k| k.resolve().map_err(|e| AuthSetupError::Keys(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = KeyRing::new(&secrets).map_err(|e| AuthSetupError::Keys(e.to_string()))?;
        let secure = config
            .session
            .cookie_secure
            .unwrap_or(config.server.tls.is_some() || public.scheme() == "https");
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
        let headers = IdentityHeaders::from_config(&config.headers);
        let views_fn: ViewsFn = {
            let engine = Arc::clone(&engine);
            Arc::new(move |claims: &Claims| -> Views {
                engine
                    .compute_all(claims)
                    .into_iter()
                    .map(|outcome| {
                        Arc::new(IdentityView {
                            encoded: headers.encode(&outcome.identity),
                            outcome,
                            assertions: AssertionCache::default(),
                        })
                    })
                    .collect()
            })
        };
        let store = SqliteStore::open(&config.store.url).await?;
        let sessions = Arc::new(SessionManager::new(
            store,
            keys,
            SessionSettings {
                cookie_name: cookie_base.clone(),
                cookie,
                idle_timeout: config.session.idle_timeout.0,
                absolute_timeout: config.session.absolute_timeout.0,
                cache_capacity: config.session.cache_capacity,
                pass_tokens: config.headers.pass_access_token || config.headers.pass_id_token,
            },
            Arc::clone(&views_fn),
        ));
        sessions.spawn_janitor();

        let mut providers = Vec::new();
        for provider in &config.providers {
            let tls = crate::tls::client_config(provider.ca_file.as_deref())?;
            let http = IdpHttp::new(tls, Duration::from_secs(10));
            providers.push(Arc::new(OidcProvider::new(provider, http)?));
        }
        Ok(Some(Self {
            providers,
            sessions,
            callback_url: format!("{base}{prefix}/callback"),
            logged_out_url: format!("{base}{prefix}/logged-out"),
            redirects: RedirectPolicy {
                own_host,
                allowed: config.session.allowed_redirect_domains.clone(),
            },
            cookie_base,
            login_timeout: i64::try_from(config.session.login_timeout.0.as_secs()).unwrap_or(600),
            engine,
            views_fn,
            refresh_before: i64::try_from(config.session.refresh_before.0.as_secs()).unwrap_or(60),
            bearer_cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            refresh_backoff_until: AtomicI64::new(0),
        }))
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<OidcProvider>> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Fetches every provider's metadata once at start; failures are
    /// logged and retried on first use.
    pub fn warm_up(self: &Arc<Self>) {
        for provider in &self.providers {
            let provider = Arc::clone(provider);
            tokio::spawn(async move {
                if let Err(e) = provider.metadata().await {
                    tracing::warn!(provider = %provider.name, error = %e, "identity provider not reachable yet; will retry on first login");
                }
            });
        }
    }

    /// The caller, from a session cookie or (when allowed) a bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap, allow_bearer: bool, pinned: Option<&str>) -> Option<Caller> {
        if let Some(session) = self.session(headers).await {
            return Some(Caller::Session(session));
        }
        if allow_bearer {
            if let Some(token) = bearer_token(headers) {
                return self.bearer(token, pinned).await.map(Caller::Bearer);
            }
        }
        None
    }

    /// Fills in a distributed groups claim (group overage) when the IdP
    /// sent a reference instead of the list, or says why it could not.
    pub async fn resolve_overage(&self, provider: &OidcProvider, login: &mut LoginResult) {
        let Some(overage) = self.engine.global().compute(&login.merged, false).overage else {
            return;
        };
        let user = login.merged.get("email").or_else(|| login.merged.get("sub")).cloned();
        match (&overage.endpoint, overage.fetch, login.tokens.access_token.as_deref()) {
            (Some(endpoint), true, Some(token)) => {
                match provider.fetch_distributed_claim(endpoint, token, &overage.claim).await {
                    Ok(value) => {
                        login.merged.insert(overage.claim.clone(), value);
                        if let Some(merged) = login.claims.get_mut("merged") {
                            *merged = serde_json::Value::Object(login.merged.clone());
                        }
                    }
                    Err(e) => tracing::warn!(
                        ?user,
                        claim = %overage.claim,
                        error = %e,
                        "group overage: fetching the distributed claim failed; no groups come from it"
                    ),
                }
            }
            (_, false, _) => tracing::warn!(
                ?user,
                claim = %overage.claim,
                "group overage: the IdP sent a distributed claim instead of the groups; \
                 set [identity.groups] overage = true to fetch it"
            ),
            _ => tracing::warn!(
                ?user,
                claim = %overage.claim,
                "group overage: no endpoint or access token to fetch the distributed claim"
            ),
        }
    }

    async fn session(&self, headers: &HeaderMap) -> Option<Arc<LiveSession>> {
        let live = self.sessions.from_request(headers).await?;
        match (live.has_refresh_token, live.token_expires_at) {
            (true, Some(expires)) if expires - now() <= self.refresh_before => self.refresh(live).await,
            _ => Some(live),
        }
    }

    /// Refreshes a session's tokens and identity. One request refreshes;
    /// others for the same session wait and use its result. A refused
    /// refresh ends the session; an unreachable IdP keeps it for now and
    /// retries later (existing sessions survive an IdP outage).
    async fn refresh(&self, live: Arc<LiveSession>) -> Option<Arc<LiveSession>> {
        let flight = Arc::clone(&live);
        let _flight = flight.refresh_lock.lock().await;
        if let Some(current) = self.sessions.cached(&live.key).await {
            if !Arc::ptr_eq(&current, &live) {
                return Some(current);
            }
        }
        if now() < self.refresh_backoff_until.load(Ordering::Relaxed) {
            return Some(live);
        }
        let (record, tokens) = self.sessions.record(&live.key).await?;
        let provider = self.provider(&record.provider)?;
        match provider.refresh(&tokens, &record.subject, &self.callback_url).await {
            Ok(mut result) => {
                self.resolve_overage(provider, &mut result).await;
                tracing::info!(provider = %provider.name, subject = %result.subject, "session refreshed");
                match self.sessions.replace(&live.key, result).await {
                    Ok(updated) => updated,
                    Err(e) => {
                        tracing::error!(error = %e, "storing a refreshed session failed");
                        None
                    }
                }
            }
            Err(e) if e.is_unreachable() => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh could not reach the IdP; keeping the session and retrying later");
                self.refresh_backoff_until
                    .store(now() + REFRESH_RETRY, Ordering::Relaxed);
                Some(live)
            }
            Err(e) => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh refused; ending the session");
                self.sessions.delete(&live.key).await;
                None
            }
        }
    }

    async fn bearer(&self, token: &str, pinned: Option<&str>) -> Option<Arc<BearerLogin>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.bearer_cache.get(&digest).await {
            if hit.expires_at > now() {
                return Some(hit);
            }
            self.bearer_cache.invalidate(&digest).await;
        }
        // The issuer names the provider; only that one is tried.
        let issuer = crate::oidc::jwt::payload_unverified(token)
            .ok()?
            .get("iss")
            .and_then(|v| v.as_str())
            .map(str::to_string)?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.issuer == issuer && pinned.is_none_or(|name| name == p.name))?;
        match provider.verify_bearer(token).await {
            Ok(claims) => {
                let expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
                let passed_tokens = self.sessions.settings.pass_tokens.then(|| {
                    Arc::new(crate::session::PassedTokens::from_tokens(&crate::session::Tokens {
                        access_token: Some(token.to_string()),
                        ..Default::default()
                    }))
                });
                let login = Arc::new(BearerLogin {
                    views: (self.views_fn)(&claims),
                    expires_at,
                    passed_tokens,
                });
                self.bearer_cache.insert(digest, Arc::clone(&login)).await;
                Some(login)
            }
            Err(e) => {
                tracing::info!(provider = %provider.name, error = %e, "bearer token refused");
                None
            }
        }
    }

    /// The views for claims (explain-free), as sessions get them.
    pub fn views(&self, claims: &Claims) -> Views {
        (self.views_fn)(claims)
    }
}

/// The token of `Authorization: Bearer <token>`, if that is what was sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
