//! OpenID Connect: discovery and keys ([`metadata`]), the authorization
//! code flow with PKCE and refresh ([`flow`]), and the checks of every
//! token an IdP hands over ([`tokens`], [`jwt`]).
//!
//! The protocol is openidconnect's; doorward adds what it leaves to the
//! relying party: azp, bounded clock skew on exp/iat, at_hash, userinfo
//! `sub` matching, `email_verified`, RFC 9207 `iss`, scheduled key refresh,
//! and the logout and bearer token rules. It returns a protocol-neutral
//! [`LoginResult`](crate::login::LoginResult) and knows nothing of sessions
//! or the request path.

mod client_auth;
mod flow;
pub mod jwt;
mod metadata;
mod tokens;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, LogoutProviderMetadata, ProviderMetadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{ClaimsSource, ClientAuth, OidcProviderConfig, ParMode};
use crate::idp_http::{IdpHttp, IdpHttpError};
use crate::secret::SecretString;
use client_auth::ClientCredential;
pub use flow::LoginStart;
use jwt::JwtError;
pub use tokens::IdTokenCheck;

/// Discovery fields openidconnect does not model: RFC 9207's and RFC
/// 9126's.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// Provider metadata with the RP-initiated logout and RFC 9207 fields.
pub type Metadata = ProviderMetadata<
    LogoutProviderMetadata<ExtraMetadata>,
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

/// Why a login, refresh or token check failed. Logged with the request id;
/// users only ever see a generic page.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's metadata could not be fetched: {0}")]
    Discovery(String),
    #[error("the identity provider's metadata is not acceptable: {0}")]
    BadMetadata(String),
    #[error("bad provider configuration: {0}")]
    Config(String),
    #[error("the token endpoint refused the request: {0}")]
    TokenEndpoint(String),
    #[error("the token endpoint's answer is not a token response: {0}")]
    BadTokenResponse(String),
    #[error("the token response has no ID token")]
    MissingIdToken,
    #[error("the ID token is invalid: {0}")]
    IdToken(IdTokenCheck),
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
    #[error("the email address is not verified (email_verified is false or missing)")]
    EmailNotVerified,
    #[error("the authorization response's iss `{0}` is not this provider's (mix-up)")]
    WrongResponseIssuer(String),
    #[error("the provider promises an iss in authorization responses (RFC 9207) and this one has none")]
    MissingResponseIssuer,
    #[error("distributed claims may only come from https on the issuer's host or claim_source_hosts, not `{0}`")]
    ClaimSourceNotAllowed(String),
    #[error("no refresh token")]
    NoRefreshToken,
    #[error("the client assertion could not be signed: {0}")]
    ClientAssertion(String),
    #[error("the pushed authorization request was refused: {0}")]
    Par(String),
    #[error("pushed authorization requests are required (par = \"always\" or by the provider), and the provider advertises no pushed_authorization_request_endpoint")]
    ParUnavailable,
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

    /// The IdP answered, but with nothing a client can use: an HTML error
    /// page or truncated JSON where a token response belongs, or an ID
    /// token its published keys do not verify. A fault at the IdP (or in
    /// front of it), not a verdict on the user: a refresh that meets one
    /// keeps the session, as an unreachable IdP does. (An attacker on the
    /// IdP path gains nothing by it: dropping the connection does the same.)
    pub fn is_idp_fault(&self) -> bool {
        matches!(
            self,
            Self::BadTokenResponse(_) | Self::IdToken(IdTokenCheck::Signature | IdTokenCheck::NoMatchingKey)
        )
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
    /// With `private_key_jwt`: the key assertions are signed with.
    client_key: Option<ClientCredential>,
    par: ParMode,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    skew: Duration,
    require_email_verified: bool,
    allow_unverified_email: bool,
    bearer_audiences: Vec<String>,
    id_token_as_bearer: bool,
    allow_http: bool,
    claim_source_hosts: Vec<String>,
    metadata_refresh: Duration,
    http: IdpHttp,
    clock: Clock,
    metadata: RwLock<Option<std::sync::Arc<Metadata>>>,
    /// Bumped whenever the key set changes (see `keys_generation`).
    keys_generation: AtomicU64,
    /// Last JWKS re-fetch: a forged `kid` cannot make doorward hammer the IdP.
    jwks_refreshed: Mutex<Option<Instant>>,
    /// Until when refreshes wait after the IdP could not be reached.
    refresh_backoff_until: AtomicI64,
}

/// How long refreshes wait after the IdP could not be reached.
const REFRESH_RETRY: i64 = 30;

impl OidcProvider {
    pub fn new(config: &OidcProviderConfig, http: IdpHttp, clock: Clock) -> Result<Self, OidcError> {
        let client_secret = match &config.client_secret {
            Some(source) => Some(source.resolve().map_err(|e| OidcError::Config(e.to_string()))?),
            None => None,
        };
        let client_key = ClientCredential::load(config)?;
        let allowed_algs = config
            .allowed_algs
            .iter()
            .map(|alg| {
                serde_json::from_value(Value::String(alg.clone()))
                    .map_err(|_| OidcError::Config(format!("unknown algorithm `{alg}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
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
            client_key,
            par: config.par,
            allowed_algs,
            skew: config.clock_skew.0,
            require_email_verified: config.require_email_verified,
            allow_unverified_email: config.insecure_allow_unverified_email,
            bearer_audiences: config.bearer_audiences.clone(),
            id_token_as_bearer: config.insecure_accept_id_token_as_bearer,
            allow_http: config.insecure_allow_http_issuer,
            claim_source_hosts: config.claim_source_hosts.clone(),
            metadata_refresh: config.metadata_refresh.0,
            http,
            clock,
            metadata: RwLock::new(None),
            keys_generation: AtomicU64::new(0),
            jwks_refreshed: Mutex::new(None),
            refresh_backoff_until: AtomicI64::new(0),
        })
    }

    /// Whether refreshes are waiting out an IdP outage.
    pub fn refresh_backing_off(&self) -> bool {
        self.clock.now() < self.refresh_backoff_until.load(Ordering::Relaxed)
    }

    /// The IdP could not be reached: hold refreshes off for a while
    /// (sessions keep their identity meanwhile).
    pub fn back_off_refresh(&self) {
        self.refresh_backoff_until
            .store(self.clock.now() + REFRESH_RETRY, Ordering::Relaxed);
    }

    /// `email_verified` rules: a `false` is refused unless the operator
    /// opted out; with `require_email_verified` it must be present and true.
    /// (Some IdPs send it as a string.)
    fn check_email_verified(&self, claims: &crate::identity::Claims) -> Result<(), OidcError> {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        match verified {
            Some(false) if !self.allow_unverified_email => Err(OidcError::EmailNotVerified),
            None if self.require_email_verified => Err(OidcError::EmailNotVerified),
            _ => Ok(()),
        }
    }
}

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
