//! Signing out: `GET /logout` asks for confirmation (a link or an image
//! must not log anyone out), the form POSTs with a CSRF token bound to the
//! session, the session ends, and the browser goes on to the IdP's own
//! logout when it has one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::ORIGIN;
use http::request::Parts;
use http::StatusCode;
use subtle::ConstantTimeEq;

use super::{param, read_form, redirect};
use crate::auth::view::Views;
use crate::auth::{Auth, AuthError, Caller};
use crate::login::LogoutContext;
use crate::respond::body::ClientBody;
use crate::respond::{add_cookie, Reply};
use crate::session::LiveSession;

/// The CSRF token for a session's logout form: a MAC of the session key.
fn csrf_token(auth: &Auth, session: &LiveSession<Views>) -> String {
    URL_SAFE_NO_PAD.encode(auth.sessions.keys().mac(&session.key.0))
}

pub(super) async fn confirm_page(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    match auth.recognise(&parts.headers, false).await? {
        Some(Caller::Session(session)) => {
            let provider = auth
                .provider(&session.provider)
                .map_or(session.provider.as_str(), |p| p.display_name());
            let user = &session.views.global().outcome.identity.user;
            Ok(auth.pages.logout_confirm(user, provider, &csrf_token(auth, &session)))
        }
        _ => Ok(signed_out(auth)),
    }
}

pub(super) fn signed_out(auth: &Auth) -> Reply {
    auth.pages.signed_out()
}

/// Ends the session (POST with the CSRF token), then sends the browser to
/// the provider's end-session endpoint when it has one.
pub(super) async fn end_session(auth: &Auth, parts: &Parts, body: impl ClientBody) -> Result<Reply, AuthError> {
    // A cross-site Origin is refused outright. `Origin: null` says nothing
    // (browsers send it for forms on pages served with `Referrer-Policy:
    // no-referrer`, as doorward's own are): the CSRF token decides.
    let origin = parts.headers.get(ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin.filter(|o| *o != "null") {
        let same = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| host == auth.redirects.own_host);
        if !same {
            return Err(AuthError::Csrf);
        }
    }
    let form = read_form(body, 8 * 1024).await?;
    let Some(Caller::Session(session)) = auth.recognise(&parts.headers, false).await? else {
        return redirect(&auth.urls.logged_out);
    };
    let expected = csrf_token(auth, &session);
    let presented = param(&form, "csrf").unwrap_or_default();
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(AuthError::Csrf);
    }
    let record = auth.sessions.record(&session.key).await?;
    auth.sessions.delete(&session.key).await?;
    tracing::info!(session = ?session.key, provider = %session.provider, "logout");
    crate::audit!(
        crate::audit::Kind::Logout,
        by = "logout",
        provider = %session.provider,
        user = %session.views.global().outcome.identity.user,
        subject = record.as_ref().map(|(r, _)| r.subject.as_str()),
        session = %crate::audit::session_ref(&session.key.0),
    );
    // The IdP's own logout, when it has one: OIDC end_session with the ID
    // token as hint, SAML LogoutRequest with the NameID and SessionIndex.
    let target = match (auth.provider(&session.provider), &record) {
        (Some(provider), Some((record, tokens))) => {
            let context = LogoutContext {
                id_token: tokens.id_token.as_deref(),
                subject: &record.subject,
                idp_session: record.sid.as_deref(),
                logout_hint: record.logout_hint.as_deref(),
                post_logout: &auth.urls.logged_out,
            };
            provider.logout_redirect(&context).await
        }
        _ => None,
    }
    .unwrap_or_else(|| auth.urls.logged_out.clone());
    let mut response = redirect(&target)?;
    *response.status_mut() = StatusCode::SEE_OTHER;
    let settings = &auth.sessions.settings;
    add_cookie(&mut response, settings.cookie.clear_cookie(&settings.cookie_name));
    Ok(response)
}
