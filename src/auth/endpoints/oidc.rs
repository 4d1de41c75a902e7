//! OpenID Connect's endpoints: the authorization response (`/callback`)
//! and back-channel logout (`/backchannel-logout`).

use http::request::Parts;

use super::{login, param, query_pairs, read_form};
use crate::auth::{Auth, AuthError};
use crate::login::pending::ProtocolState;
use crate::providers::Provider;
use crate::respond::body::ClientBody;
use crate::respond::{no_store, Reply, ResponseBody};
use crate::store::SessionStore;

/// The authorization response: state, RFC 9207 `iss`, code exchange and
/// every token check, then the protocol-neutral finish. `attempt` learns
/// the provider as soon as it is known, for the metrics.
pub(super) async fn callback(auth: &Auth, parts: &Parts, attempt: &mut String) -> Result<Reply, AuthError> {
    let query = query_pairs(parts);
    if let Some(error) = param(&query, "error") {
        return Err(AuthError::LoginFailed(format!(
            "the identity provider answered `{error}`: {}",
            param(&query, "error_description").unwrap_or("-")
        )));
    }
    let state = param(&query, "state").unwrap_or_default();
    let (pending, cookie) = login::recall(auth, parts, state)?;
    attempt.clone_from(&pending.provider);
    let ProtocolState::Oidc { nonce, pkce_verifier } = &pending.state else {
        return Err(AuthError::LoginFailed(
            "the login in progress is not an OpenID Connect login".into(),
        ));
    };
    let provider = auth
        .provider(&pending.provider)
        .and_then(Provider::oidc)
        .ok_or_else(|| AuthError::LoginFailed("the provider is no longer configured".into()))?;
    // RFC 9207: with several IdPs, a response must come from the one the
    // login went to (mix-up attack); `iss` is checked whenever it is sent,
    // and required when the provider says it sends it.
    provider
        .check_response_issuer(param(&query, "iss"))
        .await
        .map_err(|e| AuthError::LoginFailed(e.to_string()))?;
    let code = param(&query, "code").ok_or_else(|| AuthError::LoginFailed("no code in the callback".into()))?;
    let mut result = provider
        .finish_login(code, nonce, pkce_verifier, &auth.urls.callback)
        .await
        .map_err(|e| {
            if e.is_unreachable() {
                AuthError::LoginUnavailable(e.to_string())
            } else {
                AuthError::LoginFailed(e.to_string())
            }
        })?;
    auth.resolve_overage(provider, &mut result).await;
    login::finish(auth, result, &pending.return_to, Some((&pending, &cookie))).await
}

/// OpenID Connect Back-Channel Logout 1.0: the IdP tells doorward that a
/// user's session ended; every matching session is deleted.
pub(super) async fn backchannel_logout(auth: &Auth, body: impl ClientBody) -> Result<Reply, AuthError> {
    let result = end_sessions(auth, body).await;
    auth.metrics
        .backchannel_logout(if result.is_ok() { "accepted" } else { "refused" });
    result
}

async fn end_sessions(auth: &Auth, body: impl ClientBody) -> Result<Reply, AuthError> {
    let form = read_form(body, 64 * 1024).await?;
    let token = param(&form, "logout_token").ok_or_else(|| AuthError::BadLogoutToken("no logout_token".into()))?;
    let issuer = crate::oidc::jwt::payload_unverified(token)
        .ok()
        .and_then(|claims| claims.get("iss").and_then(|v| v.as_str()).map(str::to_string))
        .ok_or_else(|| AuthError::BadLogoutToken("malformed token".into()))?;
    let provider = auth
        .oidc_providers()
        .find(|p| p.issuer == issuer)
        .ok_or_else(|| AuthError::BadLogoutToken(format!("unknown issuer `{issuer}`")))?;
    let claims = provider
        .verify_logout_token(token)
        .await
        .map_err(|e| AuthError::BadLogoutToken(e.to_string()))?;
    let fresh = auth
        .sessions
        .store()
        .remember_once(&format!("backchannel-logout:{issuer}"), &claims.jti, claims.expires_at)
        .await?;
    if !fresh {
        return Err(AuthError::BadLogoutToken(format!("replayed jti `{}`", claims.jti)));
    }
    let ended = auth
        .sessions
        .delete_matching(&issuer, claims.sub.as_deref(), claims.sid.as_deref())
        .await?;
    tracing::info!(provider = %provider.name, sub = ?claims.sub, sid = ?claims.sid, ended, "back-channel logout");
    crate::audit!(
        crate::audit::Kind::Logout,
        by = "back_channel",
        provider = %provider.name,
        subject = claims.sub.as_deref(),
        count = ended,
    );
    Ok(no_store(http::Response::new(ResponseBody::empty())))
}
