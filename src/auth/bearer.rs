//! Bearer tokens as session-less logins: a JWT from a configured provider,
//! verified once and cached by its hash until it expires, or until the
//! directory generation it was derived under moves on (a directory change
//! here or on another replica, a reload, the notice channel lost). While
//! notices may be missed, no verdict is served from the cache. Whether a
//! route takes them at all, and from which provider, is the gate's
//! business. The directory has its say as on a login: `require_provisioned`
//! refuses a token it cannot match, and a directory that cannot be read is
//! a 503 (with `Retry-After`), never a verdict, cached or not.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};

use super::caller::BearerLogin;
use super::directory::Unmatched;
use super::{Auth, AuthError};
use crate::audit::Kind;
use crate::login::{Authentication, PassedTokens, Tokens};
use crate::providers::Provider;
use crate::session::Origin;

pub struct BearerCache {
    pub(super) cache: Cache<[u8; 32], Arc<BearerLogin>>,
}

impl BearerCache {
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
        }
    }
}

impl Auth {
    /// The login a token stands for; `Ok(None)` when it is refused, `Err`
    /// when the directory cannot tell.
    /// `Err`: the directory could not be read, so no verdict (a 503).
    pub(super) async fn bearer(&self, token: &str) -> Result<Option<Arc<BearerLogin>>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        let generation = self.sessions.generation();
        // Fail closed: a replica that cannot hear other replicas' directory
        // changes serves no verdict it may have missed one for.
        let trusted = !self.sessions.reading_through();
        if let Some(hit) = self.bearer.cache.get(&digest).await {
            // A verdict holds only under the keys it was reached with: once
            // the IdP stops publishing a key, its tokens are checked again
            // (and refused), cached or not.
            let keys_unchanged = self
                .provider(&hit.provider)
                .and_then(Provider::oidc)
                .is_some_and(|p| p.keys_generation() == hit.keys_generation);
            let current = hit.directory_generation == generation.directory();
            if hit.expires_at > now && keys_unchanged && current && trusted {
                return Ok(Some(hit));
            }
            self.bearer.cache.invalidate(&digest).await;
        }
        let login = self.verify_bearer(token, digest).await?;
        self.metrics
            .bearer_validation(if login.is_some() { "valid" } else { "invalid" });
        Ok(login)
    }

    /// Verifies a token the cache had no verdict for, and caches the login.
    async fn verify_bearer(&self, token: &str, digest: [u8; 32]) -> Result<Option<Arc<BearerLogin>>, AuthError> {
        // The issuer names the provider; only that one is tried.
        let Some(issuer) = crate::oidc::jwt::payload_unverified(token)
            .ok()
            .and_then(|payload| payload.get("iss").and_then(|v| v.as_str()).map(str::to_string))
        else {
            crate::audit!(Kind::BearerRefused, reason = "not a JWT with an issuer");
            return Ok(None);
        };
        let Some(provider) = self.oidc_providers().find(|p| p.issuer == issuer) else {
            crate::audit!(Kind::BearerRefused, reason = %format!("no provider has the issuer `{issuer}`"));
            return Ok(None);
        };
        // Read before verifying: if the keys (or the directory) change
        // meanwhile, the entry carries the older generation and is simply
        // checked again.
        let keys_generation = provider.keys_generation();
        let directory_generation = self.sessions.generation().directory();
        match provider.verify_bearer(token).await {
            Ok(claims) => {
                let expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
                let passed_tokens = self.sessions.settings.pass_tokens.then(|| {
                    Arc::new(PassedTokens::from_tokens(&Tokens {
                        access_token: Some(token.to_string()),
                        ..Default::default()
                    }))
                });
                // A token carries its own login's acr and auth_time (RFC 9068,
                // RFC 9470): the route's assurance is judged on those.
                let authentication = Authentication::from_claims(&claims);
                let origin = Origin {
                    provider: &provider.name,
                    issuer: &provider.issuer,
                    posture: &crate::access::posture::NONE,
                    authentication: &authentication,
                };
                let subject = claims.get("sub").and_then(|v| v.as_str()).unwrap_or_default();
                let facts = match self.directory_match(&provider.name, &claims, subject).await {
                    Ok(found) => found.facts,
                    // Nothing is cached: the next request asks again.
                    Err(Unmatched::Unavailable(e)) => {
                        tracing::warn!(provider = %provider.name, error = %e, "bearer token: the directory could not be read");
                        return Err(AuthError::StoreUnavailable(e));
                    }
                    Err(Unmatched::NotProvisioned(reason)) => {
                        tracing::info!(provider = %provider.name, %reason, "bearer token refused");
                        crate::audit!(Kind::BearerRefused, provider = %provider.name, subject, reason = %reason);
                        return Ok(None);
                    }
                };
                match self
                    .disabled_by_signal(&provider.name, &provider.issuer, subject, &claims)
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(state)) => {
                        tracing::info!(provider = %provider.name, reason = %state.reason, "bearer token refused: a shared signal disabled the account");
                        crate::audit!(
                            Kind::BearerRefused,
                            provider = %provider.name,
                            subject,
                            reason = %format!("a shared signal disabled the account: {}", state.reason),
                        );
                        return Ok(None);
                    }
                    Err(e) => return Err(AuthError::StoreUnavailable(e)),
                }
                let login = Arc::new(BearerLogin {
                    views: self.views.build(&claims, origin, facts.as_ref()),
                    provider: provider.name.clone(),
                    expires_at,
                    keys_generation,
                    directory_generation,
                    passed_tokens,
                });
                self.bearer.cache.insert(digest, Arc::clone(&login)).await;
                Ok(Some(login))
            }
            Err(e) => {
                tracing::info!(provider = %provider.name, error = %e, "bearer token refused");
                crate::audit!(Kind::BearerRefused, provider = %provider.name, reason = %e);
                Ok(None)
            }
        }
    }
}
