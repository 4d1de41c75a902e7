//! Discovery and signing keys: fetched at start, kept fresh on a schedule
//! by the provider layer (the IdP's `Cache-Control` shortens it, within
//! bounds; see [`OidcProvider::refresh_metadata`]), re-fetched at
//! most once a minute when a token names an unknown key. Keys the IdP
//! removed stop being trusted at the next refresh. Endpoints in the
//! discovery document must be https (plain http only on loopback, or when
//! the operator allowed an http issuer).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKey;
use openidconnect::JsonWebKeySet;

use super::{error_chain, Metadata, OidcError, OidcProvider};
use crate::idp_http::IdpHttpError;

/// Minimum time between two JWKS re-fetches caused by unknown keys.
const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The longest wait between scheduled refreshes, whatever the configured
/// `metadata_refresh` says: keys rotate, and a removed one must stop being
/// trusted within a day.
const REFRESH_MAX: Duration = Duration::from_secs(24 * 3600);

pub(super) type HttpFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, IdpHttpError>> + Send>>;

impl OidcProvider {
    pub(super) fn http_fn(&self) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture + '_ {
        move |request| {
            let http = self.http.clone();
            Box::pin(async move { http.send("token", request).await })
        }
    }

    /// Cached metadata, fetched on first use (and retried on the next use
    /// after a failure, so an IdP that was down at start is picked up).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        if let Some(metadata) = self.metadata.read().ok().and_then(|m| m.clone()) {
            return Ok(metadata);
        }
        Ok(self.fetch_metadata().await?.0)
    }

    /// Whether discovery has succeeded at least once.
    pub fn has_metadata(&self) -> bool {
        self.metadata.read().is_ok_and(|m| m.is_some())
    }

    /// One scheduled refresh of discovery and keys (the loop, its schedule
    /// and backoff are the provider layer's). On success, how long the IdP
    /// lets the keys be cached (`Cache-Control: max-age`), if it said; on
    /// failure the last good copy stays in use.
    pub async fn refresh_metadata(&self) -> Result<Option<Duration>, OidcError> {
        Ok(self.fetch_metadata().await?.1)
    }

    /// The configured longest wait between scheduled refreshes, at most a
    /// day.
    pub fn metadata_refresh(&self) -> Duration {
        self.metadata_refresh.min(REFRESH_MAX)
    }

    /// Uses these provider metadata (and keys) instead of discovering them.
    pub fn set_metadata(&self, metadata: Metadata) {
        self.store_metadata(Arc::new(metadata));
    }

    /// Which key set verdicts were made under: it changes whenever the
    /// provider's published keys do, so anything that cached "this token
    /// verifies" (the bearer cache) knows to check again. Without it a key
    /// the IdP removed (leaked, say) would keep vouching for the tokens it
    /// signed until they left the cache.
    pub fn keys_generation(&self) -> u64 {
        self.keys_generation.load(Ordering::Acquire)
    }

    /// The one place new metadata (and keys) take effect.
    fn store_metadata(&self, metadata: Arc<Metadata>) {
        if let Ok(mut slot) = self.metadata.write() {
            let keys_changed = slot.as_ref().is_none_or(|old| old.jwks() != metadata.jwks());
            *slot = Some(metadata);
            if keys_changed {
                self.keys_generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Discovery, then the keys; returns them with how long the IdP lets
    /// the keys be cached.
    async fn fetch_metadata(&self) -> Result<(Arc<Metadata>, Option<Duration>), OidcError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let body = self.get("discovery", &url).await?.0;
        let metadata: Metadata =
            serde_json::from_slice(&body).map_err(|e| OidcError::BadMetadata(format!("discovery document: {e}")))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly ours.
        if metadata.issuer().as_str() != self.issuer {
            return Err(OidcError::BadMetadata(format!(
                "the discovery document names issuer `{}`",
                metadata.issuer().as_str()
            )));
        }
        self.check_endpoints(&metadata)?;
        let (jwks, max_age) = self.fetch_jwks(&metadata).await?;
        let metadata = Arc::new(metadata.set_jwks(jwks));
        self.store_metadata(Arc::clone(&metadata));
        tracing::info!(provider = %self.name, issuer = %self.issuer, "identity provider metadata loaded");
        Ok((metadata, max_age))
    }

    async fn fetch_jwks(
        &self,
        metadata: &Metadata,
    ) -> Result<(JsonWebKeySet<CoreJsonWebKey>, Option<Duration>), OidcError> {
        let (body, max_age) = self.get("jwks", metadata.jwks_uri().as_str()).await?;
        let jwks = serde_json::from_slice(&body).map_err(|e| OidcError::BadMetadata(format!("JWKS: {e}")))?;
        Ok((jwks, max_age))
    }

    /// One GET, with the response's `Cache-Control: max-age`.
    async fn get(&self, endpoint: &'static str, url: &str) -> Result<(Vec<u8>, Option<Duration>), OidcError> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Discovery(format!("{url}: {e}")))?;
        let response = self
            .http
            .send(endpoint, request)
            .await
            .map_err(|e| OidcError::Discovery(format!("{url}: {}", error_chain(&e))))?;
        if !response.status().is_success() {
            return Err(OidcError::Discovery(format!("{url} answered {}", response.status())));
        }
        let max_age = crate::idp_http::max_age(response.headers());
        Ok((response.into_body(), max_age))
    }

    /// Every endpoint doorward will call or send a browser to must be https
    /// (loopback http is for tests and the demo).
    fn check_endpoints(&self, metadata: &Metadata) -> Result<(), OidcError> {
        let mut urls = vec![metadata.authorization_endpoint().as_str(), metadata.jwks_uri().as_str()];
        urls.extend(metadata.token_endpoint().map(|u| u.as_str()));
        urls.extend(metadata.userinfo_endpoint().map(|u| u.as_str()));
        urls.extend(
            metadata
                .additional_metadata()
                .end_session_endpoint
                .as_ref()
                .map(|u| u.as_str()),
        );
        let extra = &metadata.additional_metadata().additional_metadata;
        urls.extend(extra.pushed_authorization_request_endpoint.as_deref());
        for url in urls {
            if !self.acceptable_url(url) {
                return Err(OidcError::BadMetadata(format!(
                    "endpoint `{url}` is not https (plain http is only accepted on loopback)"
                )));
            }
        }
        Ok(())
    }

    pub(super) fn acceptable_url(&self, url: &str) -> bool {
        match url::Url::parse(url) {
            Ok(url) if url.scheme() == "https" => true,
            Ok(url) if url.scheme() == "http" => self.allow_http || url.host().is_some_and(is_loopback),
            _ => false,
        }
    }

    /// Re-fetches the JWKS after an unknown key id, at most once a minute.
    pub(super) async fn refresh_jwks(&self, metadata: &Metadata) -> Option<Arc<Metadata>> {
        {
            let mut last = self.jwks_refreshed.lock().ok()?;
            if last.is_some_and(|at| at.elapsed() < JWKS_REFRESH_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match self.fetch_jwks(metadata).await {
            Ok((jwks, _)) => {
                let updated = Arc::new(metadata.clone().set_jwks(jwks));
                self.store_metadata(Arc::clone(&updated));
                tracing::info!(provider = %self.name, "re-fetched the provider's signing keys");
                Some(updated)
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "re-fetching signing keys failed");
                None
            }
        }
    }
}

fn is_loopback(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}
