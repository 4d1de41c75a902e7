//! doorward's own endpoints under the internal prefix that have to do with
//! who is calling. Where each request lands, by file:
//!
//! - [`login`]: `/login` (start, provider chooser) and finishing any login
//! - [`oidc`]: `/callback`, `/backchannel-logout` (OpenID Connect)
//! - [`saml`]: `/saml/metadata`, `/saml/acs`, `/saml/slo` (SAML 2.0)
//! - [`logout`]: `/logout` (confirm, then end the session), `/logged-out`
//! - [`introspect`]: `/auth` (forward-auth), `/userinfo`, `/debug`

mod introspect;
mod login;
mod logout;
mod oidc;
mod saml;
#[cfg(test)]
pub(crate) mod tests;

use bytes::Bytes;
use http::request::Parts;
use http::Method;
use http_body_util::{BodyExt, Limited};

use super::{Auth, AuthError};
use crate::audit::Kind;
use crate::respond::body::ClientBody;
use crate::respond::Reply;

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
    SamlMetadata,
    SamlAcs,
    SamlSlo,
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
            "/saml/metadata" => Self::SamlMetadata,
            "/saml/acs" => Self::SamlAcs,
            "/saml/slo" => Self::SamlSlo,
            _ => return None,
        })
    }
}

pub async fn handle(auth: &Auth, endpoint: Endpoint, parts: &Parts, body: impl ClientBody) -> Result<Reply, AuthError> {
    match (endpoint, &parts.method) {
        (Endpoint::Login, &Method::GET | &Method::HEAD) => login::start(auth, parts).await,
        (Endpoint::Callback, &Method::GET) => {
            let mut provider = String::new();
            let result = oidc::callback(auth, parts, &mut provider).await;
            count_login(auth, &provider, &result);
            result
        }
        (Endpoint::Logout, &Method::GET | &Method::HEAD) => logout::confirm_page(auth, parts).await,
        (Endpoint::Logout, &Method::POST) => logout::end_session(auth, parts, body).await,
        (Endpoint::LoggedOut, &Method::GET | &Method::HEAD) => Ok(logout::signed_out(auth)),
        (Endpoint::BackchannelLogout, &Method::POST) => oidc::backchannel_logout(auth, body).await,
        (Endpoint::ForwardAuth, _) => introspect::forward_auth(auth, parts).await,
        (Endpoint::Userinfo, &Method::GET | &Method::HEAD) => introspect::userinfo(auth, parts).await,
        (Endpoint::Debug, &Method::GET) => introspect::debug(auth, parts).await,
        (Endpoint::SamlMetadata, &Method::GET | &Method::HEAD) => saml::metadata(auth, parts).await,
        (Endpoint::SamlAcs, &Method::POST) => {
            let mut provider = String::new();
            let result = saml::acs(auth, parts, body, &mut provider).await;
            count_login(auth, &provider, &result);
            result
        }
        (Endpoint::SamlSlo, &Method::GET | &Method::POST) => saml::slo(auth, parts, body).await,
        _ => Err(AuthError::MethodNotAllowed),
    }
}

/// One count per finished login (a callback or ACS answer), by provider
/// and outcome class; the reason itself stays in the log.
fn count_login(auth: &Auth, provider: &str, result: &Result<Reply, AuthError>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(AuthError::LoginDenied(_)) => "denied",
        Err(AuthError::LoginUnavailable(_)) => "idp_unavailable",
        Err(AuthError::StoreUnavailable(_)) => "store_unavailable",
        Err(_) => "failed",
    };
    auth.metrics.login(provider, outcome);
    // A success is audited where the session is made (with its user).
    if let Err(error) = result {
        let user = match error {
            AuthError::LoginDenied(denial) => Some(denial.account.as_str()),
            _ => None,
        };
        crate::audit!(Kind::LoginFailed, provider, user, reason = %error);
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

async fn read_form(body: impl ClientBody, limit: usize) -> Result<Vec<(String, String)>, AuthError> {
    let bytes: Bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| AuthError::BadRequest("the form body is too large or broken"))?
        .to_bytes();
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn redirect(location: &str) -> Result<Reply, AuthError> {
    crate::respond::redirect(location).ok_or(AuthError::BadRequest("unusable redirect target"))
}
