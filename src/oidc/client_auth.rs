//! How doorward proves it is the client, and pushed authorization requests.
//!
//! Client authentication at the token endpoint is openidconnect's for the
//! secret methods; for `private_key_jwt` (RFC 7523, OIDC Core 9) the crate
//! sends `client_id` in the body and doorward adds a fresh signed client
//! assertion to each request (code exchange, refresh, PAR).
//!
//! PAR (RFC 9126): the authorization parameters openidconnect built (with
//! PKCE, state and nonce) are POSTed, client-authenticated, to the IdP's
//! `pushed_authorization_request_endpoint`; the browser then carries only
//! `client_id` and the `request_uri` it returned, so the request cannot be
//! altered or read on the way and the IdP knows which client made it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use super::{error_chain, Metadata, OidcError, OidcProvider};
use crate::assertion::client_certificate::ClientCertificate;
use crate::assertion::client_key::ClientKey;
use crate::config::{ClientAuth, OidcProviderConfig, ParMode};

/// RFC 7523 §2.2.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid: long enough for one request,
/// short enough that a captured one is soon useless.
const ASSERTION_TTL: i64 = 60;

/// What `private_key_jwt` signs with and names in the assertion's header.
pub(super) struct ClientCredential {
    key: ClientKey,
    /// The `kid`: `client_key_id`, or the key's RFC 7638 thumbprint.
    kid: String,
    /// `client_certificate`'s thumbprints (`x5t`, `x5t#S256`), for IdPs that
    /// register a certificate (Entra ID).
    certificate: Option<ClientCertificate>,
}

impl ClientCredential {
    /// The provider's key and certificate, loaded when `client_auth` is
    /// `private_key_jwt` (`None` otherwise): an unreadable or unusable
    /// file, or a certificate for another key, stops the provider.
    pub(super) fn load(config: &OidcProviderConfig) -> Result<Option<Self>, OidcError> {
        if config.client_auth != ClientAuth::PrivateKeyJwt {
            return Ok(None);
        }
        let Some(path) = &config.client_key else {
            return Err(OidcError::Config(
                "client_auth = \"private_key_jwt\" needs client_key".into(),
            ));
        };
        let key = ClientKey::from_file(path).map_err(|e| OidcError::Config(e.to_string()))?;
        let certificate = match &config.client_certificate {
            Some(path) => Some(ClientCertificate::from_file(path, &key).map_err(|e| OidcError::Config(e.to_string()))?),
            None => None,
        };
        let kid = config
            .client_key_id
            .clone()
            .unwrap_or_else(|| key.thumbprint().to_string());
        Ok(Some(Self { key, kid, certificate }))
    }
}

impl OidcProvider {
    /// A client assertion for `audience`: `iss` = `sub` = the client id, a
    /// fresh `jti` (IdPs refuse a replayed one), `iat` now, `exp` in 60 s.
    pub(super) fn client_assertion(&self, audience: &str) -> Result<String, OidcError> {
        let Some(credential) = &self.client_key else {
            return Err(OidcError::Config("private_key_jwt without a client key".into()));
        };
        let now = self.clock.now();
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()),
            "iat": now,
            "exp": now.saturating_add(ASSERTION_TTL),
        });
        credential
            .key
            .sign_jwt(
                &credential.kid,
                credential.certificate.as_ref().map(ClientCertificate::thumbprints),
                &claims,
            )
            .map_err(|e| OidcError::ClientAssertion(e.to_string()))
    }

    /// The parameters a token endpoint request adds for client
    /// authentication beyond what openidconnect sends itself: a client
    /// assertion for `private_key_jwt` (its `aud` is the token endpoint,
    /// which RFC 7523 names and every IdP accepts), nothing otherwise.
    pub(super) fn token_auth_params(&self, metadata: &Metadata) -> Result<Vec<(&'static str, String)>, OidcError> {
        if self.client_auth != ClientAuth::PrivateKeyJwt {
            return Ok(Vec::new());
        }
        let token_endpoint = metadata
            .token_endpoint()
            .ok_or_else(|| OidcError::BadMetadata("no token_endpoint".into()))?;
        Ok(vec![
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            ("client_assertion", self.client_assertion(token_endpoint.as_str())?),
        ])
    }

    /// Where to push this login's authorization request, if anywhere.
    pub(super) fn par_endpoint<'m>(&self, metadata: &'m Metadata) -> Result<Option<&'m str>, OidcError> {
        let extra = &metadata.additional_metadata().additional_metadata;
        let endpoint = extra.pushed_authorization_request_endpoint.as_deref();
        let required = extra.require_pushed_authorization_requests == Some(true);
        if required && self.par == ParMode::Never && endpoint.is_some() {
            tracing::warn!(
                provider = %self.name,
                "par = \"never\", but the provider requires pushed authorization requests: using PAR"
            );
        }
        choose_par(self.par, endpoint, required)
    }

    /// Pushes the authorization request `url` carries (every query
    /// parameter openidconnect put there) and returns the URL the browser
    /// is sent to instead: the authorization endpoint with `client_id` and
    /// `request_uri` only.
    pub(super) async fn push_authorization(
        &self,
        metadata: &Metadata,
        endpoint: &str,
        url: &url::Url,
    ) -> Result<url::Url, OidcError> {
        let request = self.par_request(metadata, endpoint, url)?;
        let response = self
            .http
            .send("par", request)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        if !status.is_success() {
            // The OAuth error and its description only: never the request.
            let error = body.get("error").and_then(Value::as_str).unwrap_or("no OAuth error");
            let description = body.get("error_description").and_then(Value::as_str).unwrap_or("");
            return Err(OidcError::Par(
                format!("{status}: {error} {description}").trim_end().into(),
            ));
        }
        let request_uri = body
            .get("request_uri")
            .and_then(Value::as_str)
            .filter(|uri| !uri.is_empty())
            .ok_or_else(|| OidcError::Par(format!("{status}: the answer has no request_uri")))?;
        let mut redirect = url::Url::parse(metadata.authorization_endpoint().as_str())
            .map_err(|e| OidcError::BadMetadata(format!("authorization_endpoint: {e}")))?;
        redirect
            .query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("request_uri", request_uri);
        Ok(redirect)
    }

    /// The PAR POST: the authorization parameters and client authentication.
    fn par_request(
        &self,
        metadata: &Metadata,
        endpoint: &str,
        url: &url::Url,
    ) -> Result<http::Request<Vec<u8>>, OidcError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in url.query_pairs() {
            // openidconnect puts client_id there; client auth adds its own.
            if key != "client_id" {
                form.append_pair(&key, &value);
            }
        }
        let mut request = http::Request::post(endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json");
        form.append_pair("client_id", &self.client_id);
        match (self.client_auth, &self.client_secret) {
            (ClientAuth::PrivateKeyJwt, _) => {
                form.append_pair("client_assertion_type", ASSERTION_TYPE);
                // The token endpoint as audience, as at the token endpoint:
                // RFC 9126 §2 has the IdP accept it (and oidc-provider,
                // Keycloak and Okta do).
                let token_endpoint = metadata
                    .token_endpoint()
                    .ok_or_else(|| OidcError::BadMetadata("no token_endpoint".into()))?;
                form.append_pair("client_assertion", &self.client_assertion(token_endpoint.as_str())?);
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.append_pair("client_secret", secret.expose());
            }
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                // RFC 6749 §2.3.1: each part form-encoded, as openidconnect does.
                let id: String = form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
                let secret: String = form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
                let credential = STANDARD.encode(format!("{id}:{secret}"));
                request = request.header(http::header::AUTHORIZATION, format!("Basic {credential}"));
            }
            (_, None) => {}
        }
        request
            .body(form.finish().into_bytes())
            .map_err(|e| OidcError::Par(e.to_string()))
    }
}

/// `par` against what discovery says: `auto` pushes when there is an
/// endpoint; a provider that requires PAR gets it whatever `par` says (a
/// login it would refuse anyway helps nobody); `always`, or a requirement,
/// without an endpoint is an error.
pub(super) fn choose_par(mode: ParMode, endpoint: Option<&str>, required: bool) -> Result<Option<&str>, OidcError> {
    match (endpoint, mode, required) {
        (Some(_), ParMode::Never, false) => Ok(None),
        (Some(endpoint), _, _) => Ok(Some(endpoint)),
        (None, ParMode::Always, _) | (None, _, true) => Err(OidcError::ParUnavailable),
        (None, ParMode::Auto | ParMode::Never, false) => Ok(None),
    }
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
