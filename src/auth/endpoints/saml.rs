//! SAML 2.0's endpoints: doorward's SP metadata (`/saml/metadata`), the
//! assertion consumer service (`/saml/acs`, HTTP-POST) and single logout
//! (`/saml/slo`, HTTP-Redirect and HTTP-POST, both directions).

use std::sync::Arc;

use http::request::Parts;
use http::StatusCode;

use super::{login, param, query_pairs, read_form, redirect};
use crate::auth::{Auth, AuthError};
use crate::login::pending::ProtocolState;
use crate::respond::body::ClientBody;
use crate::respond::{add_cookie, full, Reply};
use crate::saml::{IdpLogoutRequest, SamlError, SamlProvider};
use crate::store::SessionStore;

/// Largest ACS or SLO form read (each provider bounds the message itself).
const MAX_FORM: usize = 2 << 20;

/// `GET /saml/metadata[?provider=NAME]`: what an IdP admin imports.
pub(super) async fn metadata(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    let query = query_pairs(parts);
    let provider = match param(&query, "provider") {
        Some(name) => auth.saml_providers().find(|p| p.name == name),
        None => auth.saml_providers().next(),
    }
    .ok_or(AuthError::NotFound)?;
    Ok(full(
        StatusCode::OK,
        provider.sp_metadata(),
        "application/samlmetadata+xml",
    ))
}

/// The SAML provider a message comes from: the only one, or the one whose
/// IdP entity id the (not yet verified) Issuer names.
fn provider_for(auth: &Auth, issuer: Option<&str>) -> Result<Arc<SamlProvider>, AuthError> {
    let mut providers = auth.saml_providers();
    let (first, second) = (providers.next(), providers.next());
    match (first, second, issuer) {
        (Some(only), None, _) => Ok(Arc::clone(only)),
        (Some(_), Some(_), Some(issuer)) => auth
            .saml_providers()
            .find(|p| p.idp_entity_id().as_deref() == Some(issuer))
            .cloned()
            .ok_or_else(|| AuthError::LoginFailed(format!("no SAML provider has the issuer `{issuer}`"))),
        (Some(_), Some(_), None) => Err(AuthError::LoginFailed("the SAML message names no issuer".into())),
        (None, _, _) => Err(AuthError::NotFound),
    }
}

fn refused(provider: &SamlProvider, error: SamlError) -> AuthError {
    AuthError::LoginFailed(format!(
        "SAML response for provider `{}` refused: {error}",
        provider.name
    ))
}

/// `POST /saml/acs`: the IdP's Response. Every check in
/// [`SamlProvider::validate_response`], then replay (the assertion ID is
/// remembered in the durable store, so a restart does not reopen the
/// window), then the same finish as every login.
/// `attempt` learns the provider as soon as it is known, for the metrics.
pub(super) async fn acs(
    auth: &Auth,
    parts: &Parts,
    body: impl ClientBody,
    attempt: &mut String,
) -> Result<Reply, AuthError> {
    let form = read_form(body, MAX_FORM).await?;
    let encoded = param(&form, "SAMLResponse")
        .ok_or(AuthError::BadRequest("no SAMLResponse"))?
        .to_string();
    let relay = param(&form, "RelayState");
    let issuer = SamlProvider::peek_issuer(&encoded, MAX_FORM);
    let provider = provider_for(auth, issuer.as_deref())?;
    attempt.clone_from(&provider.name);
    // The login this browser started, if the RelayState names one.
    let pending = relay.and_then(|key| login::recall(auth, parts, key).ok());
    let expected = pending.as_ref().and_then(|(pending, _)| match &pending.state {
        ProtocolState::Saml { request_id } if pending.provider == provider.name => Some(request_id.clone()),
        _ => None,
    });
    // Signature checks are CPU work in libxmlsec: off the async threads.
    let checker = Arc::clone(&provider);
    let validated = tokio::task::spawn_blocking(move || checker.validate_response(&encoded, expected.as_deref()))
        .await
        .map_err(|e| AuthError::LoginFailed(format!("SAML validation did not finish: {e}")))?
        .map_err(|e| refused(&provider, e))?;
    let scope = format!("saml-assertion:{}", validated.result.issuer);
    let fresh = auth
        .sessions
        .store()
        .remember_once(&scope, &validated.assertion_id, validated.replay_until)
        .await?;
    if !fresh {
        return Err(refused(&provider, SamlError::Replayed));
    }
    let (return_to, cookie) = match &pending {
        Some((pending, cookie)) => (pending.return_to.clone(), Some((pending, cookie.as_str()))),
        // Unsolicited: the RelayState may name where to go, if it is safe.
        None => (
            relay
                .and_then(|target| auth.redirects.check(target))
                .unwrap_or_else(|| "/".to_string()),
            None,
        ),
    };
    login::finish(auth, validated.result, &return_to, cookie).await
}

/// `/saml/slo`: an IdP's LogoutRequest (ends the matching sessions and
/// answers with a LogoutResponse), or the IdP's LogoutResponse to the
/// request doorward sent when a user signed out here.
pub(super) async fn slo(auth: &Auth, parts: &Parts, body: impl ClientBody) -> Result<Reply, AuthError> {
    let query = parts.uri.query().unwrap_or_default();
    let form = if parts.method == http::Method::POST {
        read_form(body, MAX_FORM).await?
    } else {
        Vec::new()
    };
    let posted_request = param(&form, "SAMLRequest").map(|r| (r, param(&form, "RelayState")));
    let query_pairs = query_pairs(parts);
    if posted_request.is_some() || param(&query_pairs, "SAMLRequest").is_some() {
        return idp_logout(auth, parts, query, posted_request).await;
    }
    if param(&query_pairs, "SAMLResponse").is_some() {
        // Our session ended before we sent the LogoutRequest; this only
        // says whether the IdP's ended too.
        let mut last = None;
        for provider in auth.saml_providers() {
            match provider.receive_logout_response(query) {
                Ok(()) => {
                    tracing::info!(provider = %provider.name, "SAML single logout completed at the IdP");
                    return redirect(&auth.urls.logged_out);
                }
                Err(e) => last = Some(e),
            }
        }
        return Err(AuthError::LoginFailed(format!(
            "SAML LogoutResponse refused: {}",
            last.map_or("no SAML provider".to_string(), |e| e.to_string())
        )));
    }
    Err(AuthError::BadRequest("no SAMLRequest or SAMLResponse"))
}

/// An IdP's LogoutRequest (front channel: the browser carries it). It is
/// accepted once (its ID is remembered until its IssueInstant window ends):
/// a replay changes nothing. The sessions it names (NameID, SessionIndex)
/// end, as SAML Profiles §4.4.4.1 asks of a session participant; the
/// browser's cookie is cleared only when that browser holds one of them,
/// so a LogoutRequest naming someone else's session, carried by any
/// browser, cannot sign that browser out (logout CSRF).
async fn idp_logout(
    auth: &Auth,
    parts: &Parts,
    query: &str,
    posted: Option<(&str, Option<&str>)>,
) -> Result<Reply, AuthError> {
    let mut last = None;
    for provider in auth.saml_providers() {
        let request = match provider.receive_logout_request((!query.is_empty()).then_some(query), posted) {
            Ok(request) => request,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let issuer = provider.idp_entity_id().unwrap_or_default();
        let fresh = auth
            .sessions
            .store()
            .remember_once(
                &format!("saml-logout-request:{issuer}"),
                &request.id,
                request.replay_until,
            )
            .await?;
        if !fresh {
            return Err(AuthError::BadLogoutToken(format!(
                "SAML LogoutRequest `{}` from provider `{}` refused: {}",
                request.id,
                provider.name,
                SamlError::ReplayedLogoutRequest
            )));
        }
        // Read before the sessions end: afterwards there is nothing to compare.
        let this_browser = holds_named_session(auth, parts, &issuer, &request).await?;
        let mut ended = 0;
        if request.session_indexes.is_empty() {
            ended += auth
                .sessions
                .delete_matching(&issuer, Some(&request.name_id), None)
                .await?;
        }
        for index in &request.session_indexes {
            ended += auth
                .sessions
                .delete_matching(&issuer, Some(&request.name_id), Some(index))
                .await?;
        }
        tracing::info!(provider = %provider.name, ended, this_browser, "SAML IdP-initiated logout");
        crate::audit!(
            crate::audit::Kind::Logout,
            by = "saml_slo",
            provider = %provider.name,
            subject = %request.name_id,
            count = ended,
        );
        let target = provider
            .logout_response_redirect(&request)
            .map_err(|e| AuthError::LoginFailed(format!("cannot answer the LogoutRequest: {e}")))?;
        let mut response = redirect(&target)?;
        if this_browser {
            let settings = &auth.sessions.settings;
            add_cookie(&mut response, settings.cookie.clear_cookie(&settings.cookie_name));
        }
        return Ok(response);
    }
    Err(AuthError::BadLogoutToken(format!(
        "SAML LogoutRequest refused: {}",
        last.map_or("no SAML provider".to_string(), |e| e.to_string())
    )))
}

/// Whether the session this browser's cookie holds is one `request` names:
/// the same IdP and NameID, and one of its SessionIndexes when it lists
/// any (the sessions `delete_matching` ends for it).
async fn holds_named_session(
    auth: &Auth,
    parts: &Parts,
    issuer: &str,
    request: &IdpLogoutRequest,
) -> Result<bool, AuthError> {
    let Some(live) = auth.sessions.from_request(&parts.headers).await? else {
        return Ok(false);
    };
    let Some((record, _)) = auth.sessions.record(&live.key).await? else {
        return Ok(false);
    };
    let indexed = request.session_indexes.is_empty()
        || record
            .sid
            .as_ref()
            .is_some_and(|sid| request.session_indexes.contains(sid));
    Ok(record.issuer == issuer && record.subject == request.name_id && indexed)
}
