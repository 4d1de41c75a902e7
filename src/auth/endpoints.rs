//! doorward's login endpoints under the internal prefix: login (and the
//! provider chooser), callback, logout, back-channel logout, forward-auth
//! and userinfo.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, ORIGIN, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::pending::{self, PendingLogin};
use super::{pages, Auth, Caller};
use crate::proxy::body::ResponseBody;
use crate::proxy::errors::ProxyError;
use crate::session::{cookies, now};
use crate::store::SessionStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Callback,
    Logout,
    LoggedOut,
    BackchannelLogout,
    ForwardAuth,
    Userinfo,
    Debug,
}

impl Endpoint {
    /// `rest` is the path after the internal prefix.
    pub fn parse(rest: &str) -> Option<Self> {
        Some(match rest {
            "/login" => Self::Login,
            "/callback" => Self::Callback,
            "/logout" => Self::Logout,
            "/logged-out" => Self::LoggedOut,
            "/backchannel-logout" => Self::BackchannelLogout,
            "/auth" => Self::ForwardAuth,
            "/userinfo" => Self::Userinfo,
            "/debug" => Self::Debug,
            _ => return None,
        })
    }
}

type Reply = Result<Response<ResponseBody>, ProxyError>;

pub async fn handle(auth: &Auth, endpoint: Endpoint, parts: &Parts, body: Incoming, prefix: &str) -> Reply {
    match (endpoint, &parts.method) {
        (Endpoint::Login, &Method::GET | &Method::HEAD) => login(auth, parts, prefix).await,
        (Endpoint::Callback, &Method::GET) => callback(auth, parts).await,
        (Endpoint::Logout, &Method::GET | &Method::HEAD) => logout_page(auth, parts, prefix).await,
        (Endpoint::Logout, &Method::POST) => logout(auth, parts, body).await,
        (Endpoint::LoggedOut, &Method::GET | &Method::HEAD) => Ok(html(StatusCode::OK, pages::signed_out())),
        (Endpoint::BackchannelLogout, &Method::POST) => backchannel_logout(auth, body).await,
        (Endpoint::ForwardAuth, _) => forward_auth(auth, parts).await,
        (Endpoint::Userinfo, &Method::GET | &Method::HEAD) => userinfo(auth, parts).await,
        (Endpoint::Debug, &Method::GET) => debug(auth, parts).await,
        _ => Err(ProxyError::MethodNotAllowed),
    }
}

fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn html(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    no_store(response)
}

/// An uncacheable response: everything here is about one user.
fn no_store(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(body: String) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(response)
}

fn redirect(location: &str) -> Reply {
    let location = HeaderValue::from_str(location).map_err(|_| ProxyError::BadRequest("unusable redirect target"))?;
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn add_cookie(response: &mut Response<ResponseBody>, cookie: Option<HeaderValue>) {
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
}

/// Starts a login: picks the provider (or shows the chooser), remembers
/// state, nonce, PKCE verifier and the validated return-to in a sealed
/// cookie, and sends the browser to the IdP.
async fn login(auth: &Auth, parts: &Parts, prefix: &str) -> Reply {
    let query = query_pairs(parts);
    let return_to = param(&query, "rd")
        .and_then(|rd| auth.redirects.check(rd))
        .unwrap_or_else(|| "/".to_string());
    let provider = match param(&query, "provider") {
        Some(name) => auth.provider(name).ok_or(ProxyError::BadRequest("no such provider"))?,
        None if auth.providers.len() == 1 => &auth.providers[0],
        None => {
            let choices: Vec<(String, String)> = auth
                .providers
                .iter()
                .map(|p| (p.name.clone(), p.display_name.clone()))
                .collect();
            return Ok(html(
                StatusCode::OK,
                pages::chooser(&format!("{prefix}/login"), &choices, &return_to),
            ));
        }
    };
    let start = provider.start_login(&auth.callback_url).await.map_err(|e| {
        if e.is_unreachable() {
            ProxyError::LoginUnavailable(e.to_string())
        } else {
            ProxyError::LoginFailed(e.to_string())
        }
    })?;
    let pending = PendingLogin {
        provider: provider.name.clone(),
        state: start.state.clone(),
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        return_to,
        created_at: now(),
    };
    let name = pending::cookie_name(&auth.cookie_base, &start.state)
        .ok_or_else(|| ProxyError::LoginFailed("unusable state".into()))?;
    let sealed = pending.seal(auth.sessions.keys(), &name);
    let mut response = redirect(&start.url)?;
    add_cookie(
        &mut response,
        auth.sessions
            .settings
            .cookie
            .set_cookie(&name, &sealed, auth.login_timeout),
    );
    Ok(response)
}

/// Finishes a login: state, code exchange and every token check, policy,
/// then a brand-new session.
async fn callback(auth: &Auth, parts: &Parts) -> Reply {
    let query = query_pairs(parts);
    let state = param(&query, "state").unwrap_or_default();
    let cookie_name = pending::cookie_name(&auth.cookie_base, state);
    if let Some(error) = param(&query, "error") {
        return Err(ProxyError::LoginFailed(format!(
            "the identity provider answered `{error}`: {}",
            param(&query, "error_description").unwrap_or("-")
        )));
    }
    let name = cookie_name.ok_or_else(|| ProxyError::LoginFailed(pending::StateError::MissingState.to_string()))?;
    let sealed = cookies::find(&parts.headers, &name)
        .ok_or_else(|| ProxyError::LoginFailed(pending::StateError::NoCookie.to_string()))?;
    let pending = PendingLogin::open(auth.sessions.keys(), &name, sealed, state, auth.login_timeout)
        .map_err(|e| ProxyError::LoginFailed(e.to_string()))?;
    let code = param(&query, "code").ok_or_else(|| ProxyError::LoginFailed("no code in the callback".into()))?;
    let provider = auth
        .provider(&pending.provider)
        .ok_or_else(|| ProxyError::LoginFailed("the provider is no longer configured".into()))?;
    let mut result = provider
        .finish_login(code, &pending.nonce, &pending.pkce_verifier, &auth.callback_url)
        .await
        .map_err(|e| {
            if e.is_unreachable() {
                ProxyError::LoginUnavailable(e.to_string())
            } else {
                ProxyError::LoginFailed(e.to_string())
            }
        })?;
    auth.resolve_overage(provider, &mut result).await;
    let outcome = auth.engine.global().compute(&result.merged, false);
    if !outcome.login.allowed {
        return Err(ProxyError::LoginDenied(format!(
            "user `{}`: {}",
            outcome.identity.user,
            outcome.login.reason.unwrap_or_default()
        )));
    }
    log_login(&result, &outcome);
    if tracing::enabled!(tracing::Level::DEBUG) {
        // IdPs omit a claim when a user has none of it: say so, quietly.
        let explained = auth.engine.global().compute(&result.merged, true);
        for reason in explained
            .reasons
            .iter()
            .filter(|r| r.rule.starts_with("claim is missing"))
        {
            tracing::debug!(user = %outcome.identity.user, part = reason.part, claim = %reason.value, "claim is missing: no values");
        }
    }
    let max_age = i64::try_from(auth.sessions.settings.absolute_timeout.as_secs()).unwrap_or(i64::MAX);
    let (sealed, _) = auth
        .sessions
        .create(result)
        .await
        .map_err(|e| ProxyError::LoginUnavailable(format!("session store: {e}")))?;
    let mut response = redirect(&pending.return_to)?;
    let settings = &auth.sessions.settings;
    add_cookie(
        &mut response,
        settings.cookie.set_cookie(&settings.cookie_name, &sealed, max_age),
    );
    add_cookie(&mut response, settings.cookie.clear_cookie(&name));
    Ok(response)
}

/// One structured line per login: which claims came (and which were
/// blank), how many groups went in and out, and the roles that resulted.
fn log_login(result: &crate::session::LoginResult, outcome: &crate::identity::engine::Outcome) {
    let present: Vec<&str> = result.merged.keys().map(String::as_str).collect();
    let blank: Vec<&str> = result
        .merged
        .iter()
        .filter(|(_, v)| {
            v.is_null() || v.as_str().is_some_and(str::is_empty) || v.as_array().is_some_and(Vec::is_empty)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let groups_in = result
        .merged
        .get("groups")
        .and_then(|g| g.as_array())
        .map_or(0, Vec::len);
    tracing::info!(
        provider = %result.provider,
        user = %outcome.identity.user,
        subject = %result.subject,
        claims = ?present,
        blank = ?blank,
        groups_in,
        groups_out = outcome.identity.groups.len(),
        roles = ?outcome.identity.roles,
        refresh_token = result.tokens.refresh_token.is_some(),
        "login"
    );
}

/// The CSRF token for a session's logout form.
fn csrf_token(auth: &Auth, caller: &Caller) -> Option<String> {
    match caller {
        Caller::Session(session) => Some(URL_SAFE_NO_PAD.encode(auth.sessions.keys().mac(&session.key.0))),
        Caller::Bearer(_) => None,
    }
}

async fn logout_page(auth: &Auth, parts: &Parts, prefix: &str) -> Reply {
    match auth.authenticate(&parts.headers, false, None).await {
        Some(caller) => {
            let csrf = csrf_token(auth, &caller).unwrap_or_default();
            Ok(html(
                StatusCode::OK,
                pages::logout_confirm(&format!("{prefix}/logout"), &csrf),
            ))
        }
        None => Ok(html(StatusCode::OK, pages::signed_out())),
    }
}

async fn read_form(body: Incoming, limit: usize) -> Result<Vec<(String, String)>, ProxyError> {
    let bytes: Bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| ProxyError::BadRequest("the form body is too large or broken"))?
        .to_bytes();
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// Ends the session (POST with the CSRF token), then sends the browser to
/// the provider's end_session_endpoint when it has one.
async fn logout(auth: &Auth, parts: &Parts, body: Incoming) -> Reply {
    if let Some(origin) = parts.headers.get(ORIGIN).and_then(|o| o.to_str().ok()) {
        let same = url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| host == auth.redirects.own_host);
        if !same {
            return Err(ProxyError::Csrf);
        }
    }
    let form = read_form(body, 8 * 1024).await?;
    let Some(Caller::Session(session)) = auth.authenticate(&parts.headers, false, None).await else {
        return redirect(&auth.logged_out_url);
    };
    let expected = csrf_token(auth, &Caller::Session(Arc::clone(&session))).unwrap_or_default();
    let presented = param(&form, "csrf").unwrap_or_default();
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(ProxyError::Csrf);
    }
    let id_token = auth
        .sessions
        .record(&session.key)
        .await
        .and_then(|(_, tokens)| tokens.id_token);
    auth.sessions.delete(&session.key).await;
    tracing::info!(user = %session.identity().user, provider = %session.provider, "logout");
    let target = match auth.provider(&session.provider) {
        Some(provider) => provider
            .end_session_url(id_token.as_deref(), &auth.logged_out_url)
            .await
            .unwrap_or_else(|| auth.logged_out_url.clone()),
        None => auth.logged_out_url.clone(),
    };
    let mut response = redirect(&target)?;
    *response.status_mut() = StatusCode::SEE_OTHER;
    let settings = &auth.sessions.settings;
    add_cookie(&mut response, settings.cookie.clear_cookie(&settings.cookie_name));
    Ok(response)
}

/// OpenID Connect Back-Channel Logout 1.0: the IdP tells doorward that a
/// user's session ended; every matching session is deleted.
async fn backchannel_logout(auth: &Auth, body: Incoming) -> Reply {
    let form = read_form(body, 64 * 1024).await?;
    let token = param(&form, "logout_token").ok_or_else(|| ProxyError::BadLogoutToken("no logout_token".into()))?;
    let issuer = crate::oidc::jwt::payload_unverified(token)
        .ok()
        .and_then(|claims| claims.get("iss").and_then(|v| v.as_str()).map(str::to_string))
        .ok_or_else(|| ProxyError::BadLogoutToken("malformed token".into()))?;
    let provider = auth
        .providers
        .iter()
        .find(|p| p.issuer == issuer)
        .ok_or_else(|| ProxyError::BadLogoutToken(format!("unknown issuer `{issuer}`")))?;
    let claims = provider
        .verify_logout_token(token)
        .await
        .map_err(|e| ProxyError::BadLogoutToken(e.to_string()))?;
    let fresh = auth
        .sessions
        .store()
        .remember_once(&format!("backchannel-logout:{issuer}"), &claims.jti, claims.expires_at)
        .await
        .map_err(|e| ProxyError::LoginUnavailable(format!("session store: {e}")))?;
    if !fresh {
        return Err(ProxyError::BadLogoutToken(format!("replayed jti `{}`", claims.jti)));
    }
    let ended = auth
        .sessions
        .delete_matching(&issuer, claims.sub.as_deref(), claims.sid.as_deref())
        .await
        .map_err(|e| ProxyError::LoginUnavailable(format!("session store: {e}")))?;
    tracing::info!(provider = %provider.name, sub = ?claims.sub, sid = ?claims.sid, ended, "back-channel logout");
    Ok(no_store(Response::new(ResponseBody::empty())))
}

/// For nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz: 200
/// with the identity headers when logged in, 401 otherwise.
async fn forward_auth(auth: &Auth, parts: &Parts) -> Reply {
    let caller = auth
        .authenticate(&parts.headers, true, None)
        .await
        .ok_or(ProxyError::Unauthenticated)?;
    let mut response = Response::new(ResponseBody::empty());
    for (name, value) in caller.view(0).encoded.iter() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(no_store(response))
}

/// The current identity as JSON, for single-page apps.
async fn userinfo(auth: &Auth, parts: &Parts) -> Reply {
    let caller = auth
        .authenticate(&parts.headers, true, None)
        .await
        .ok_or(ProxyError::Unauthenticated)?;
    let identity = caller.identity();
    let body = serde_json::json!({
        "sub": identity.subject,
        "user": identity.user,
        "email": identity.email,
        "preferred_username": identity.preferred_username,
        "groups": identity.groups,
        "roles": identity.roles,
        "role": identity.role,
        "orgs": identity.orgs,
    });
    Ok(json_response(body.to_string()))
}

/// For admins holding an `[identity] debug_roles` role: the logged-in
/// user's ID-token, userinfo and merged claims, and the identity under
/// every policy with the reason for each value. Never the tokens.
async fn debug(auth: &Auth, parts: &Parts) -> Reply {
    let Some(Caller::Session(session)) = auth.authenticate(&parts.headers, false, None).await else {
        return Err(ProxyError::Unauthenticated);
    };
    let allowed = &auth.engine.global().debug_roles;
    if !session.identity().roles.iter().any(|r| allowed.contains(r)) {
        return Err(ProxyError::Forbidden(format!(
            "user `{}` holds no [identity] debug_roles role",
            session.identity().user
        )));
    }
    let record = auth
        .sessions
        .store()
        .get(&session.key)
        .await
        .map_err(|e| ProxyError::LoginUnavailable(format!("session store: {e}")))?
        .ok_or(ProxyError::Unauthenticated)?;
    let snapshot: serde_json::Value = serde_json::from_str(&record.claims).unwrap_or_default();
    let merged = crate::session::merged_claims(&record.claims);
    let policies: Vec<_> = auth.engine.policies.iter().map(|p| p.compute(&merged, true)).collect();
    let body = serde_json::json!({
        "provider": record.provider,
        "claims": snapshot,
        "identity": policies.first(),
        "route_policies": policies.get(1..).unwrap_or_default(),
    });
    Ok(json_response(serde_json::to_string_pretty(&body).unwrap_or_default()))
}
