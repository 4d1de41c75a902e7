//! Authentication: who is calling. A session cookie, or a bearer JWT from a
//! configured provider; refreshes tokens that are about to expire (single
//! flight per session) so identity follows the IdP.

pub mod endpoints;
mod pages;
pub mod pending;
pub mod redirect;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::identity::{self, Identity};
use crate::oidc::http_client::IdpHttp;
use crate::oidc::{OidcError, OidcProvider};
use crate::proxy::identity_headers::{EncodedIdentity, IdentityHeaders};
use crate::session::cookies::{effective_name, CookieSettings};
use crate::session::keys::KeyRing;
use crate::session::{now, LiveSession, SessionManager, SessionSettings};
use crate::store::SqliteStore;
use redirect::RedirectPolicy;

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
}

/// Who a request is from, once authenticated.
pub enum Caller {
    Session(Arc<LiveSession>),
    Bearer(Arc<BearerLogin>),
}

impl Caller {
    pub fn identity(&self) -> &Arc<Identity> {
        match self {
            Self::Session(session) => &session.identity,
            Self::Bearer(bearer) => &bearer.identity,
        }
    }
}

/// A verified bearer token, cached until it expires.
pub struct BearerLogin {
    pub identity: Arc<Identity>,
    pub encoded: EncodedIdentity,
    expires_at: i64,
}

pub struct Auth {
    pub providers: Vec<Arc<OidcProvider>>,
    pub sessions: Arc<SessionManager>,
    pub callback_url: String,
    pub logged_out_url: String,
    pub redirects: RedirectPolicy,
    pub cookie_base: String,
    pub login_timeout: i64,
    pub allowed_email_domains: Vec<String>,
    refresh_before: i64,
    bearer_cache: Cache<[u8; 32], Arc<BearerLogin>>,
    headers: IdentityHeaders,
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
        let public =
            url::Url::parse(public_url).map_err(|e| AuthSetupError::PublicUrl(e.to_string()))?;
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
            },
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
                allowed: config.login.allowed_redirect_domains.clone(),
            },
            cookie_base,
            login_timeout: i64::try_from(config.session.login_timeout.0.as_secs()).unwrap_or(600),
            allowed_email_domains: config.login.allowed_email_domains.clone(),
            refresh_before: i64::try_from(config.session.refresh_before.0.as_secs()).unwrap_or(60),
            bearer_cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            headers: IdentityHeaders::from_config(&config.headers),
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
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        allow_bearer: bool,
        pinned: Option<&str>,
    ) -> Option<Caller> {
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

    /// The identity headers for a caller, encoded once per session.
    pub fn encoded(&self, caller: &Caller) -> EncodedIdentity {
        match caller {
            Caller::Session(session) => Arc::clone(
                session
                    .encoded
                    .get_or_init(|| self.headers.encode(&session.identity)),
            ),
            Caller::Bearer(bearer) => Arc::clone(&bearer.encoded),
        }
    }

    async fn session(&self, headers: &HeaderMap) -> Option<Arc<LiveSession>> {
        let live = self.sessions.from_request(headers).await?;
        match (live.has_refresh_token, live.token_expires_at) {
            (true, Some(expires)) if expires - now() <= self.refresh_before => {
                self.refresh(live).await
            }
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
        match provider
            .refresh(&tokens, &record.subject, &self.callback_url)
            .await
        {
            Ok(result) => {
                tracing::info!(
                    provider = %provider.name,
                    user = %result.identity.user,
                    groups = result.identity.groups.len(),
                    "session refreshed"
                );
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
                let identity = identity::from_claims(&claims);
                let expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
                let login = Arc::new(BearerLogin {
                    encoded: self.headers.encode(&identity),
                    identity: Arc::new(identity),
                    expires_at,
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

    /// Is the email allowed by `[login] allowed_email_domains`? Parsed
    /// strictly: one `@`, and the domain compared whole.
    pub fn email_allowed(&self, email: Option<&str>) -> bool {
        if self.allowed_email_domains.is_empty() {
            return true;
        }
        let Some(domain) = email.and_then(email_domain) else {
            return false;
        };
        self.allowed_email_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&domain))
    }
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
    let valid_local = !local.is_empty()
        && !local.contains(['"', ' ', '(', ')', ',', ':', ';', '<', '>', '[', ']', '\\']);
    (valid_domain && valid_local).then(|| domain.to_ascii_lowercase())
}

/// The token of `Authorization: Bearer <token>`, if that is what was sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_are_parsed_strictly() {
        assert_eq!(
            email_domain("a@Example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(email_domain("a@b.com@evil.com"), None);
        assert_eq!(email_domain("\"a@b.com\"@evil.com"), None);
        assert_eq!(email_domain("@example.com"), None);
        assert_eq!(email_domain("a@"), None);
        assert_eq!(email_domain("a@example.com."), None);
        assert_eq!(email_domain("a@exa mple.com"), None);
        assert_eq!(email_domain("no-at-sign"), None);
    }
}
