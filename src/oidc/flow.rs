//! The authorization code flow with PKCE (S256), state and nonce; the
//! refresh grant; userinfo; where to send a browser to log out.

use std::sync::Arc;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde_json::Value;

use super::{error_chain, jwt, Metadata, OidcError, OidcProvider};
use crate::config::{ClaimsSource, ClientAuth};
use crate::identity::Claims;
use crate::login::{AssuranceAsk, Authentication, LoginResult, Tokens};

/// The openidconnect client as doorward builds it from discovered metadata
/// (authorization endpoint set; token and userinfo endpoints maybe).
type RpClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// What the login start hands to the pending-login cookie.
pub struct LoginStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Token endpoint failures: a refusal by the IdP (an OAuth error response,
/// such as `invalid_grant`), an answer that is no token response at all
/// (an HTML error page, truncated JSON), or no answer.
fn token_error<RE, T>(error: openidconnect::RequestTokenError<RE, T>) -> OidcError
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match &error {
        openidconnect::RequestTokenError::Request(_) => OidcError::Unreachable(error_chain(&error)),
        openidconnect::RequestTokenError::ServerResponse(_) => OidcError::TokenEndpoint(error_chain(&error)),
        _ => OidcError::BadTokenResponse(error_chain(&error)),
    }
}

impl OidcProvider {
    pub(super) fn client(&self, metadata: &Metadata, redirect_uri: &str) -> Result<RpClient, OidcError> {
        // With a client key no secret is ever sent: openidconnect then puts
        // `client_id` in the body, and the assertion is added per request.
        let secret = self
            .client_secret
            .as_ref()
            .filter(|_| self.client_auth != ClientAuth::PrivateKeyJwt)
            .map(|s| ClientSecret::new(s.expose().to_string()));
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| OidcError::Config(e.to_string()))?;
        let auth_type = match self.client_auth {
            ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
            ClientAuth::ClientSecretPost | ClientAuth::PrivateKeyJwt => AuthType::RequestBody,
        };
        Ok(
            CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(self.client_id.clone()), secret)
                .set_redirect_uri(redirect)
                .set_auth_type(auth_type),
        )
    }

    /// The authorization URL, with fresh state, nonce and PKCE (S256).
    /// `offline_access` is asked for when the provider offers it, so
    /// sessions can be refreshed instead of ending at `absolute_timeout`.
    /// With PAR the parameters are pushed first and the URL carries only
    /// `client_id` and `request_uri`.
    ///
    /// `ask` (a route's `acr` and `max_age`) is sent as `acr_values` and
    /// `max_age`, and, when the provider takes the claims parameter, as an
    /// essential `acr` claim too: what comes back is checked by the login
    /// callback, never assumed.
    pub async fn start_login(&self, redirect_uri: &str, ask: &AssuranceAsk) -> Result<LoginStart, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let offers_offline = metadata
            .scopes_supported()
            .is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == "offline_access"));
        if offers_offline && !self.scopes.iter().any(|s| s == "offline_access") {
            request = request.add_scope(Scope::new("offline_access".into()));
        }
        for (key, value) in &self.auth_params {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        if !ask.acr.is_empty() {
            let advertised = metadata.acr_values_supported();
            let known = advertised.is_some_and(|values| values.iter().any(|v| ask.acr.iter().any(|a| **a == **v)));
            if !known {
                // Asked and checked all the same: the answer decides.
                tracing::warn!(
                    provider = %self.name,
                    asked = ?ask.acr,
                    "the provider does not advertise any of the asked acr values (acr_values_supported)"
                );
            }
        }
        for (key, value) in assurance_params(ask, metadata.claims_parameter_supported() == Some(true)) {
            request = request.add_extra_param(key, value);
        }
        let (url, state, nonce) = request.url();
        let url = match self.par_endpoint(&metadata)? {
            Some(endpoint) => self.push_authorization(&metadata, endpoint, &url).await?,
            None => url,
        };
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// RFC 9207: the authorization response's `iss` must be this
    /// provider's when sent, and must be sent when the provider says so.
    pub async fn check_response_issuer(&self, iss: Option<&str>) -> Result<(), OidcError> {
        match iss {
            Some(iss) if iss == self.issuer => Ok(()),
            Some(iss) => Err(OidcError::WrongResponseIssuer(iss.to_string())),
            None => {
                let metadata = self.metadata().await?;
                let promised = metadata
                    .additional_metadata()
                    .additional_metadata
                    .authorization_response_iss_parameter_supported
                    == Some(true);
                if promised {
                    Err(OidcError::MissingResponseIssuer)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Exchanges the code and checks everything the spec asks of the RP.
    pub async fn finish_login(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> Result<LoginResult, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, redirect_uri)?;
        let http = self.http_fn();
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
        for (key, value) in self.token_auth_params(&metadata)? {
            request = request.add_extra_param(key, value);
        }
        let response = request.request_async(&http).await.map_err(token_error)?;
        let id_token = response.id_token().ok_or(OidcError::MissingIdToken)?;
        let expected_nonce = Nonce::new(nonce.to_string());
        let id_claims = self
            .verify_id_token(
                &metadata,
                redirect_uri,
                id_token,
                Some(&expected_nonce),
                response.access_token(),
            )
            .await?;
        self.complete(id_claims, &response, None).await
    }

    /// Userinfo merge, checks, result: shared by login and refresh.
    async fn complete(
        &self,
        id_claims: Claims,
        response: &openidconnect::core::CoreTokenResponse,
        previous_refresh: Option<&str>,
    ) -> Result<LoginResult, OidcError> {
        let subject = id_claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let userinfo = match self.claims_source {
            ClaimsSource::IdToken => None,
            ClaimsSource::Userinfo | ClaimsSource::Merged => self.userinfo(response.access_token().secret()).await?,
        };
        if let Some(userinfo) = &userinfo {
            let userinfo_sub = userinfo.get("sub").and_then(Value::as_str);
            if userinfo_sub != Some(subject.as_str()) {
                return Err(OidcError::UserinfoSubjectMismatch);
            }
        }
        let merged = match (self.claims_source, &userinfo) {
            (ClaimsSource::IdToken, _) | (_, None) => id_claims.clone(),
            (ClaimsSource::Userinfo, Some(userinfo)) => {
                let mut merged = userinfo.clone();
                for key in ["iss", "sub", "aud", "sid"] {
                    if let Some(v) = id_claims.get(key) {
                        merged.insert(key.to_string(), v.clone());
                    }
                }
                merged
            }
            (ClaimsSource::Merged, Some(userinfo)) => {
                let mut merged = id_claims.clone();
                for (k, v) in userinfo {
                    merged.insert(k.clone(), v.clone());
                }
                merged
            }
        };
        self.check_email_verified(&merged)?;
        let now = self.clock.now();
        let expires_at = response
            .expires_in()
            .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        let tokens = Tokens {
            access_token: Some(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous_refresh.map(str::to_string)),
            id_token: response.id_token().map(|t| t.to_string()),
            expires_at,
        };
        let sid = id_claims.get("sid").and_then(Value::as_str).map(str::to_string);
        let claims = serde_json::json!({
            "id_token": id_claims,
            "userinfo": userinfo,
            "merged": merged,
        });
        Ok(LoginResult {
            provider: self.name.clone(),
            issuer: self.issuer.clone(),
            subject,
            idp_session: sid,
            logout_hint: None,
            idp_session_end: None,
            merged,
            claims,
            tokens,
            authentication: Authentication::from_claims(&id_claims),
        })
    }

    /// The userinfo endpoint's claims (JSON responses), if it has one.
    async fn userinfo(&self, access_token: &str) -> Result<Option<Claims>, OidcError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.userinfo_endpoint() else {
            return Ok(None);
        };
        let claims = self.get_json(endpoint.as_str(), access_token, "userinfo").await?;
        let Value::Object(claims) = claims else {
            return Err(OidcError::Userinfo("userinfo is not a JSON object".into()));
        };
        Ok(Some(claims))
    }

    /// Uses the refresh token; the new claims replace the old ones, so
    /// membership removed at the IdP disappears here.
    pub async fn refresh(&self, tokens: &Tokens, subject: &str, redirect_uri: &str) -> Result<LoginResult, OidcError> {
        let refresh_token = tokens.refresh_token.as_ref().ok_or(OidcError::NoRefreshToken)?;
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, redirect_uri)?;
        let http = self.http_fn();
        let refresh_token_value = RefreshToken::new(refresh_token.clone());
        let mut request = client
            .exchange_refresh_token(&refresh_token_value)
            .map_err(|e| OidcError::Config(e.to_string()))?;
        for (key, value) in self.token_auth_params(&metadata)? {
            request = request.add_extra_param(key, value);
        }
        let response = request.request_async(&http).await.map_err(token_error)?;
        let id_claims = match response.id_token() {
            Some(id_token) => {
                self.verify_id_token(&metadata, redirect_uri, id_token, None, response.access_token())
                    .await?
            }
            None => {
                // No new ID token: keep the old one's claims, userinfo
                // brings the fresh ones.
                let old = tokens.id_token.as_deref().ok_or(OidcError::MissingIdToken)?;
                jwt::payload_unverified(old)?
            }
        };
        if id_claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(OidcError::RefreshSubjectMismatch);
        }
        let mut result = self.complete(id_claims, &response, Some(refresh_token)).await?;
        if result.tokens.id_token.is_none() {
            result.tokens.id_token = tokens.id_token.clone();
        }
        Ok(result)
    }

    /// Where to send the browser after a local logout, if the provider
    /// supports RP-initiated logout.
    pub async fn end_session_url(&self, id_token_hint: Option<&str>, post_logout_redirect: &str) -> Option<String> {
        let metadata: Arc<Metadata> = self.metadata().await.ok()?;
        let endpoint = metadata.additional_metadata().end_session_endpoint.as_ref()?;
        let mut url = url::Url::parse(endpoint.as_str()).ok()?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint);
            }
            query.append_pair("client_id", &self.client_id);
            query.append_pair("post_logout_redirect_uri", post_logout_redirect);
        }
        Some(url.to_string())
    }
}

/// The authorization request's parameters for `ask` (OIDC Core 3.1.2.1
/// and 5.5.1.1): `acr_values` and `max_age`, and with the claims
/// parameter an essential `acr` among the asked values, which providers
/// that treat `acr_values` as a mere hint must honour or fail.
fn assurance_params(ask: &AssuranceAsk, claims_parameter: bool) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut essential = serde_json::Map::new();
    if !ask.acr.is_empty() {
        params.push(("acr_values".to_string(), ask.acr.join(" ")));
        essential.insert("acr".into(), serde_json::json!({"essential": true, "values": ask.acr}));
    }
    // No parameter names methods; an essential `amr` in the claims
    // parameter is how some providers (Entra ID) are asked for MFA.
    if !ask.amr.is_empty() {
        essential.insert("amr".into(), serde_json::json!({"essential": true, "values": ask.amr}));
    }
    if claims_parameter && !essential.is_empty() {
        let claims = serde_json::json!({ "id_token": essential });
        params.push(("claims".to_string(), claims.to_string()));
    }
    if let Some(max_age) = ask.max_age {
        params.push(("max_age".to_string(), max_age.to_string()));
    }
    params
}

#[cfg(test)]
mod tests {
    use openidconnect::core::{CoreErrorResponseType, CoreTokenResponse};
    use openidconnect::{RequestTokenError, StandardErrorResponse};

    use super::{token_error, OidcError};
    use crate::oidc::IdTokenCheck;

    type Failure = RequestTokenError<std::io::Error, StandardErrorResponse<CoreErrorResponseType>>;

    #[test]
    fn a_step_up_asks_for_acr_values_max_age_and_an_essential_acr() {
        use super::{assurance_params, AssuranceAsk};
        assert!(assurance_params(&AssuranceAsk::default(), true).is_empty());
        let ask = AssuranceAsk {
            acr: vec!["urn:mfa".into(), "phr".into()],
            max_age: Some(900),
            amr: Vec::new(),
        };
        let params = assurance_params(&ask, true);
        let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("acr_values").as_deref(), Some("urn:mfa phr"));
        assert_eq!(get("max_age").as_deref(), Some("900"));
        let claims: serde_json::Value = serde_json::from_str(&get("claims").unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            claims,
            serde_json::json!({"id_token": {"acr": {"essential": true, "values": ["urn:mfa", "phr"]}}})
        );
        assert!(assurance_params(&ask, false).iter().all(|(k, _)| k != "claims"));
        let methods = AssuranceAsk {
            amr: vec!["mfa".into()],
            ..AssuranceAsk::default()
        };
        assert_eq!(
            assurance_params(&methods, true),
            [(
                "claims".to_string(),
                r#"{"id_token":{"amr":{"essential":true,"values":["mfa"]}}}"#.to_string()
            )]
        );
    }

    #[test]
    fn only_an_oauth_error_response_is_a_refusal_and_garbage_is_an_idp_fault() {
        let refused: Failure = RequestTokenError::ServerResponse(StandardErrorResponse::new(
            CoreErrorResponseType::InvalidGrant,
            None,
            None,
        ));
        let refused = token_error(refused);
        assert!(matches!(refused, OidcError::TokenEndpoint(_)), "{refused:?}");
        assert!(!refused.is_unreachable() && !refused.is_idp_fault());

        let html: Failure = RequestTokenError::Other("Unexpected response Content-Type: text/html".into());
        let mut json = serde_json::Deserializer::from_str(r#"{"access_token":"a","token_ty"#);
        let truncated: Failure = match serde_path_to_error::deserialize::<_, CoreTokenResponse>(&mut json) {
            Ok(_) => panic!("truncated JSON parsed"),
            Err(e) => RequestTokenError::Parse(e, Vec::new()),
        };
        for garbage in [html, truncated] {
            let error = token_error(garbage);
            assert!(matches!(error, OidcError::BadTokenResponse(_)), "{error:?}");
            assert!(error.is_idp_fault() && !error.is_unreachable());
        }

        let unreachable: Failure = RequestTokenError::Request(std::io::Error::other("connection refused"));
        assert!(matches!(token_error(unreachable), OidcError::Unreachable(_)));
        for check in [IdTokenCheck::Signature, IdTokenCheck::NoMatchingKey] {
            assert!(OidcError::IdToken(check).is_idp_fault());
        }
        for check in [IdTokenCheck::Audience, IdTokenCheck::Expired, IdTokenCheck::Nonce] {
            assert!(!OidcError::IdToken(check).is_idp_fault());
        }
    }
}
