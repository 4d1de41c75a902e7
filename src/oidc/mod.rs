//! OpenID Connect: discovery, the authorization code flow with PKCE, ID
//! token validation, userinfo, refresh, logout tokens and bearer tokens.
//!
//! The protocol is openidconnect's; doorward adds what it leaves to the
//! relying party: azp, bounded clock skew on exp/iat, at_hash, userinfo
//! `sub` matching, JWKS refresh on an unknown key (rate-limited), and the
//! logout and bearer token rules in [`jwt`].

pub mod http_client;
pub mod jwt;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeySet, LogoutProviderMetadata, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, RefreshToken, Scope,
    SignatureVerificationError, TokenResponse,
};
use serde_json::Value;

use crate::config::{ClaimsSource, ClientAuth, ProviderConfig};
use crate::identity::Claims;
use crate::secret::SecretString;
use crate::session::{now, LoginResult, Tokens};
use http_client::{IdpHttp, IdpHttpError};
use jwt::{Expectations, JwtError, LogoutClaims};

/// Provider metadata with the RP-initiated logout fields.
pub type Metadata = ProviderMetadata<
    LogoutProviderMetadata<EmptyAdditionalProviderMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The openidconnect client as doorward builds it from discovered metadata
/// (authorization endpoint set; token and userinfo endpoints maybe).
type RpClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
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

/// Why a login, refresh or token check failed. Logged with the request id;
/// users only ever see a generic page.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's metadata could not be fetched: {0}")]
    Discovery(String),
    #[error("bad provider configuration: {0}")]
    Config(String),
    #[error("the token endpoint refused the request: {0}")]
    TokenEndpoint(String),
    #[error("the token response has no ID token")]
    MissingIdToken,
    #[error("the ID token is invalid: {0}")]
    IdToken(String),
    #[error("the ID token's azp names another client")]
    WrongAuthorizedParty,
    #[error("the ID token's at_hash does not match the access token")]
    AccessTokenHashMismatch,
    #[error("userinfo failed: {0}")]
    Userinfo(String),
    #[error("userinfo `sub` differs from the ID token's")]
    UserinfoSubjectMismatch,
    #[error("the refreshed ID token is for another subject")]
    RefreshSubjectMismatch,
    #[error("the email address is not verified")]
    EmailNotVerified,
    #[error("no refresh token")]
    NoRefreshToken,
    #[error("token: {0}")]
    Jwt(#[from] JwtError),
    #[error("HTTP: {0}")]
    Http(#[from] IdpHttpError),
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
}

impl OidcError {
    /// A network failure, as opposed to the IdP saying no.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Discovery(_) | Self::Http(_))
    }
}

/// Token endpoint failures: a refusal by the IdP, or no answer at all.
fn token_error<RE, T>(error: openidconnect::RequestTokenError<RE, T>) -> OidcError
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match &error {
        openidconnect::RequestTokenError::Request(_) => OidcError::Unreachable(error_chain(&error)),
        _ => OidcError::TokenEndpoint(error_chain(&error)),
    }
}

/// One OpenID provider, its cached metadata and keys.
pub struct OidcProvider {
    pub name: String,
    pub display_name: String,
    pub issuer: String,
    client_id: String,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
    claims_source: ClaimsSource,
    auth_params: Vec<(String, String)>,
    client_auth: ClientAuth,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    skew: Duration,
    require_email_verified: bool,
    bearer_audiences: Vec<String>,
    http: IdpHttp,
    metadata: RwLock<Option<Arc<Metadata>>>,
    /// Last JWKS re-fetch: a forged `kid` cannot make doorward hammer the IdP.
    jwks_refreshed: Mutex<Option<Instant>>,
}

/// Minimum time between two JWKS re-fetches caused by unknown keys.
const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// What the login start hands to the pending-login cookie.
pub struct LoginStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl OidcProvider {
    pub fn new(config: &ProviderConfig, http: IdpHttp) -> Result<Self, OidcError> {
        let client_secret = match &config.client_secret {
            Some(source) => Some(source.resolve().map_err(|e| OidcError::Config(e.to_string()))?),
            None => None,
        };
        let allowed_algs = config
            .allowed_algs
            .iter()
            .map(|alg| {
                serde_json::from_value(Value::String(alg.clone()))
                    .map_err(|_| OidcError::Config(format!("unknown algorithm `{alg}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bearer_audiences = if config.bearer_audiences.is_empty() {
            vec![config.client_id.clone()]
        } else {
            config.bearer_audiences.clone()
        };
        Ok(Self {
            name: config.name.clone(),
            display_name: config.display_name.clone().unwrap_or_else(|| config.name.clone()),
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            scopes: config.scopes.clone(),
            claims_source: config.claims_source,
            auth_params: config.auth_params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            client_auth: config.client_auth,
            allowed_algs,
            skew: config.clock_skew.0,
            require_email_verified: config.require_email_verified,
            bearer_audiences,
            http,
            metadata: RwLock::new(None),
            jwks_refreshed: Mutex::new(None),
        })
    }

    fn http_fn(&self) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture + '_ {
        move |request| {
            let http = self.http.clone();
            Box::pin(async move { http.send(request).await })
        }
    }

    /// Cached metadata, fetched on first use (and retried on the next use
    /// after a failure, so an IdP that was down at start is picked up).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        if let Some(metadata) = self.metadata.read().ok().and_then(|m| m.clone()) {
            return Ok(metadata);
        }
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| OidcError::Config(e.to_string()))?;
        let http = self.http_fn();
        let metadata = Metadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let metadata = Arc::new(metadata);
        if let Ok(mut slot) = self.metadata.write() {
            *slot = Some(Arc::clone(&metadata));
        }
        tracing::info!(provider = %self.name, issuer = %self.issuer, "identity provider metadata loaded");
        Ok(metadata)
    }

    /// Whether discovery has succeeded at least once.
    pub fn has_metadata(&self) -> bool {
        self.metadata.read().is_ok_and(|m| m.is_some())
    }

    /// Uses these provider metadata (and keys) instead of discovering them.
    pub fn set_metadata(&self, metadata: Metadata) {
        if let Ok(mut slot) = self.metadata.write() {
            *slot = Some(Arc::new(metadata));
        }
    }

    /// Re-fetches the JWKS after an unknown key id, at most once a minute.
    async fn refresh_jwks(&self, metadata: &Metadata) -> Option<Arc<Metadata>> {
        {
            let mut last = self.jwks_refreshed.lock().ok()?;
            if last.is_some_and(|at| at.elapsed() < JWKS_REFRESH_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let http = self.http_fn();
        match JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http).await {
            Ok(jwks) => {
                let updated = Arc::new(metadata.clone().set_jwks(jwks));
                if let Ok(mut slot) = self.metadata.write() {
                    *slot = Some(Arc::clone(&updated));
                }
                tracing::info!(provider = %self.name, "re-fetched the provider's signing keys");
                Some(updated)
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %error_chain(&e), "re-fetching signing keys failed");
                None
            }
        }
    }

    fn client(&self, metadata: &Metadata, redirect_uri: &str) -> Result<RpClient, OidcError> {
        let secret = self
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_string()));
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| OidcError::Config(e.to_string()))?;
        let auth_type = match self.client_auth {
            ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
            ClientAuth::ClientSecretPost => AuthType::RequestBody,
        };
        Ok(
            CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(self.client_id.clone()), secret)
                .set_redirect_uri(redirect)
                .set_auth_type(auth_type),
        )
    }

    /// The authorization URL, with fresh state, nonce and PKCE (S256).
    pub async fn start_login(&self, redirect_uri: &str) -> Result<LoginStart, OidcError> {
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
        for (key, value) in &self.auth_params {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        let (url, state, nonce) = request.url();
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
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
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&http)
            .await
            .map_err(token_error)?;
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

    /// Verifies an ID token (signature, iss, aud, azp, exp/iat with skew,
    /// nonce, at_hash), re-fetching keys once on an unknown `kid`.
    async fn verify_id_token(
        &self,
        metadata: &Arc<Metadata>,
        redirect_uri: &str,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: Option<&Nonce>,
        access_token: &openidconnect::AccessToken,
    ) -> Result<Claims, OidcError> {
        let mut metadata = Arc::clone(metadata);
        let mut retried = false;
        loop {
            let client = self.client(&metadata, redirect_uri)?;
            let skew = chrono::Duration::from_std(self.skew).unwrap_or_else(|_| chrono::Duration::seconds(60));
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(self.allowed_algs.clone())
                // exp is compared with this clock: lenient by the skew, no more.
                .set_time_fn(move || Utc::now() - skew)
                .set_issue_time_verifier_fn(move |iat: DateTime<Utc>| {
                    let now = Utc::now();
                    if iat > now + skew {
                        Err(format!("issued in the future ({iat})"))
                    } else if iat < now - skew - chrono::Duration::minutes(10) {
                        Err(format!("issued too long ago ({iat})"))
                    } else {
                        Ok(())
                    }
                });
            let checked = match nonce {
                Some(nonce) => id_token.claims(&verifier, nonce).map(|_| ()),
                // Refreshed ID tokens carry no fresh nonce to compare.
                None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(|_| ()),
            };
            match checked {
                Ok(()) => {
                    let claims = id_token
                        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                        .map_err(|e| OidcError::IdToken(e.to_string()))?;
                    if let Some(azp) = claims.authorized_party() {
                        if azp.as_str() != self.client_id {
                            return Err(OidcError::WrongAuthorizedParty);
                        }
                    } else if claims.audiences().len() > 1 {
                        return Err(OidcError::WrongAuthorizedParty);
                    }
                    if let Some(expected) = claims.access_token_hash() {
                        let alg = id_token.signing_alg().map_err(|e| OidcError::IdToken(e.to_string()))?;
                        let key = id_token
                            .signing_key(&verifier)
                            .map_err(|e| OidcError::IdToken(e.to_string()))?;
                        let actual = AccessTokenHash::from_token(access_token, alg, key)
                            .map_err(|e| OidcError::IdToken(e.to_string()))?;
                        if actual != *expected {
                            return Err(OidcError::AccessTokenHashMismatch);
                        }
                    }
                    return Ok(jwt::payload_unverified(&id_token.to_string())?);
                }
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                    if !retried =>
                {
                    retried = true;
                    match self.refresh_jwks(&metadata).await {
                        Some(updated) => metadata = updated,
                        None => {
                            return Err(OidcError::IdToken("no key matches the token's key id".into()));
                        }
                    }
                }
                Err(e) => return Err(OidcError::IdToken(e.to_string())),
            }
        }
    }

    /// Userinfo merge, checks, identity: shared by login and refresh.
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
        if self.require_email_verified && merged.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(OidcError::EmailNotVerified);
        }
        let expires_at = response
            .expires_in()
            .map(|d| now().saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
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
            sid,
            merged,
            claims,
            tokens,
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
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.clone()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(token_error)?;
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

    /// GETs a JSON document with the access token as bearer credential.
    async fn get_json(&self, url: &str, access_token: &str, what: &str) -> Result<Value, OidcError> {
        let request = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Userinfo(format!("{what}: {e}")))?;
        let response = self.http.send(request).await?;
        if !response.status().is_success() {
            return Err(OidcError::Userinfo(format!("{what} answered {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|e| OidcError::Userinfo(format!("{what}: not JSON: {e}")))
    }

    /// Fetches a distributed claim (OIDC Core §5.6.2) from `endpoint` with
    /// the access token. Accepts a JSON object holding the claim, or a
    /// Graph-style `{"value": [...]}` list.
    pub async fn fetch_distributed_claim(
        &self,
        endpoint: &str,
        access_token: &str,
        claim: &str,
    ) -> Result<Value, OidcError> {
        let body = self.get_json(endpoint, access_token, "claim source").await?;
        body.get(claim)
            .or_else(|| body.get("value"))
            .cloned()
            .ok_or_else(|| OidcError::Userinfo(format!("the claim source has no `{claim}`")))
    }

    /// Where to send the browser after a local logout, if the provider
    /// supports RP-initiated logout.
    pub async fn end_session_url(&self, id_token_hint: Option<&str>, post_logout_redirect: &str) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
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

    fn expectations<'a>(&'a self, audiences: &'a [String], require_exp: bool) -> Expectations<'a> {
        Expectations {
            issuer: &self.issuer,
            audiences,
            now: now(),
            skew: i64::try_from(self.skew.as_secs()).unwrap_or(60),
            require_exp,
        }
    }

    async fn verify_signature(&self, token: &str) -> Result<jwt::Verified, OidcError> {
        let metadata = self.metadata().await?;
        match jwt::verify_signature(token, metadata.jwks(), &self.allowed_algs) {
            Err(JwtError::NoMatchingKey) => {
                let updated = self.refresh_jwks(&metadata).await.ok_or(JwtError::NoMatchingKey)?;
                Ok(jwt::verify_signature(token, updated.jwks(), &self.allowed_algs)?)
            }
            other => Ok(other?),
        }
    }

    /// Back-channel logout token: fully validated (replay is checked by the
    /// caller against the store).
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, OidcError> {
        let verified = self.verify_signature(token).await?;
        let audiences = [self.client_id.clone()];
        Ok(jwt::check_logout_token(
            &verified,
            &self.expectations(&audiences, false),
        )?)
    }

    /// A bearer JWT from this provider, as a session-less login.
    pub async fn verify_bearer(&self, token: &str) -> Result<Claims, OidcError> {
        let verified = self.verify_signature(token).await?;
        jwt::check_common(&verified.claims, &self.expectations(&self.bearer_audiences, true))?;
        if verified
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(JwtError::MissingClaim("sub").into());
        }
        Ok(verified.claims)
    }
}

type HttpFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, IdpHttpError>> + Send>>;

/// An error and its sources on one line (openidconnect nests the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod id_token_tests;
