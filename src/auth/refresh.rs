//! Keeping a session's identity current: when its access token is about
//! to expire, the next request refreshes it at the IdP (one request per
//! session; the others wait and use its result) and the identity is
//! recomputed from the fresh claims.

use std::sync::Arc;

use super::view::Views;
use super::{Auth, AuthError};
use crate::session::LiveSession;

impl Auth {
    /// A refused refresh ends the session; an unreachable IdP keeps it for
    /// now (existing sessions survive an IdP outage) and the provider
    /// backs off before trying again. A refresh after which the user may
    /// no longer log in ends the session at once.
    pub(super) async fn refresh(
        &self,
        live: Arc<LiveSession<Views>>,
    ) -> Result<Option<Arc<LiveSession<Views>>>, AuthError> {
        let flight = Arc::clone(&live);
        let _flight = flight.refresh_lock.lock().await;
        if let Some(current) = self.sessions.cached(&live.key).await {
            if !Arc::ptr_eq(&current, &live) {
                return Ok(Some(current));
            }
        }
        // Only OpenID Connect sessions refresh (SAML has no such thing).
        let Some(provider) = self.provider(&live.provider).and_then(|p| p.oidc()) else {
            return Ok(Some(live));
        };
        if provider.refresh_backing_off() {
            return Ok(Some(live));
        }
        let Some((record, tokens)) = self.sessions.record(&live.key).await? else {
            return Ok(None);
        };
        match provider.refresh(&tokens, &record.subject, &self.urls.callback).await {
            Ok(mut result) => {
                self.resolve_overage(provider, &mut result).await;
                let Some(updated) = self.sessions.replace(&live.key, result).await? else {
                    return Ok(None);
                };
                let global = &updated.views.global().outcome;
                if !global.login.allowed {
                    tracing::warn!(
                        provider = %provider.name,
                        user = %global.identity.user,
                        reason = global.login.reason.as_deref().unwrap_or("-"),
                        "session ended: after a refresh the user may no longer log in"
                    );
                    self.sessions.delete(&live.key).await?;
                    return Ok(None);
                }
                tracing::info!(provider = %provider.name, user = %global.identity.user, "session refreshed");
                Ok(Some(updated))
            }
            Err(e) if e.is_unreachable() => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh could not reach the IdP; keeping the session and retrying later");
                provider.back_off_refresh();
                Ok(Some(live))
            }
            Err(e) => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh refused; ending the session");
                self.sessions.delete(&live.key).await?;
                Ok(None)
            }
        }
    }
}
