//! Keeping a session's identity current: when its access token is about
//! to expire, the next request refreshes it at the IdP and the identity is
//! recomputed from the fresh claims.
//!
//! One refresh per session, everywhere: in this process the session's
//! mutex makes other requests wait for the result; across replicas the
//! store's refresh lease lets one replica use the (possibly rotating)
//! refresh token while the others wait for its result and use that, rather
//! than spending the token a second time and being refused.

use std::sync::Arc;
use std::time::Duration;

use super::view::Views;
use super::{Auth, AuthError};
use crate::session::{LiveSession, Replacement};
use crate::store::SessionStore;

/// How long a replica's refresh lease lasts: longer than an IdP call.
const LEASE: i64 = 30;
/// How long a replica waits for another's refresh before going on with
/// the session it has.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(10);

impl Auth {
    /// A refused refresh ends the session; an unreachable IdP, or one whose
    /// answer is unusable (garbage, keys that do not verify), keeps it for
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
        if self.sessions.store_recently_failed() {
            return Ok(Some(live));
        }
        let store = self.sessions.store();
        let now = self.clock.now();
        // A store that does not answer postpones the refresh: the session
        // goes on with the identity it has, like during an IdP outage.
        match store.lease_refresh(&live.key, now, now + LEASE).await {
            Ok(true) => {}
            Ok(false) => return self.await_other_refresh(live).await,
            Err(e) => {
                tracing::debug!(error = %e, "refresh postponed: the store does not answer");
                self.sessions.note_store_failure(&e);
                return Ok(Some(live));
            }
        }
        let (record, tokens) = match self.sessions.record(&live.key).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::debug!(error = %e, "refresh postponed: the store does not answer");
                return Ok(Some(live));
            }
        };
        if live.is_older_than(&record) {
            // Refreshed elsewhere after this copy was loaded.
            return self.reload(&live).await;
        }
        match provider.refresh(&tokens, &record.subject, &self.urls.callback).await {
            Ok(mut result) => {
                self.resolve_overage(provider, &mut result).await;
                let Some(updated) = self.sessions.replace(&live.key, result, Replacement::Refresh).await? else {
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
                    self.metrics.refresh("ended");
                    self.sessions.delete(&live.key).await?;
                    crate::audit!(
                        crate::audit::Kind::SessionEnded,
                        by = "refresh",
                        provider = %provider.name,
                        user = %global.identity.user,
                        session = %crate::audit::session_ref(&live.key.0),
                        reason = global.login.reason.as_deref().unwrap_or("no longer allowed to log in"),
                    );
                    return Ok(None);
                }
                self.metrics.refresh("success");
                tracing::info!(provider = %provider.name, user = %global.identity.user, "session refreshed");
                Ok(Some(updated))
            }
            Err(e) if e.is_unreachable() => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh could not reach the IdP; keeping the session and retrying later");
                self.metrics.refresh("idp_unavailable");
                provider.back_off_refresh();
                Ok(Some(live))
            }
            Err(e) if e.is_idp_fault() => {
                tracing::warn!(provider = %provider.name, error = %e, "refresh got an unusable answer from the IdP; keeping the session and retrying later");
                self.metrics.refresh("idp_unavailable");
                provider.back_off_refresh();
                Ok(Some(live))
            }
            Err(e) => {
                // A lease that expired under a slow refresh elsewhere can let
                // two refreshes race; the loser's token was spent by the
                // winner. If the record moved on, use the winner's result.
                if let Some((record, _)) = self.sessions.record(&live.key).await? {
                    if live.is_older_than(&record) {
                        return self.reload(&live).await;
                    }
                }
                tracing::warn!(provider = %provider.name, error = %e, "refresh refused; ending the session");
                self.metrics.refresh("ended");
                self.sessions.delete(&live.key).await?;
                crate::audit!(
                    crate::audit::Kind::SessionEnded,
                    by = "refresh",
                    provider = %provider.name,
                    user = %live.views.global().outcome.identity.user,
                    session = %crate::audit::session_ref(&live.key.0),
                    reason = %e,
                );
                Ok(None)
            }
        }
    }

    /// Another replica holds the lease: wait (bounded) for its refresh to
    /// land in the store, then use it.
    async fn await_other_refresh(
        &self,
        live: Arc<LiveSession<Views>>,
    ) -> Result<Option<Arc<LiveSession<Views>>>, AuthError> {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        while tokio::time::Instant::now() < deadline {
            match self.sessions.record(&live.key).await? {
                None => return Ok(None),
                Some((record, _)) if live.is_older_than(&record) => return self.reload(&live).await,
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Some(live))
    }

    /// The session as the store has it now.
    async fn reload(&self, live: &LiveSession<Views>) -> Result<Option<Arc<LiveSession<Views>>>, AuthError> {
        self.sessions.invalidate(&live.key).await;
        Ok(self.sessions.get(&live.key).await?)
    }
}
