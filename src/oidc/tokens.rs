//! Every token an IdP hands doorward, checked: ID tokens (through
//! openidconnect, plus azp and at_hash), back-channel logout tokens and
//! bearer access tokens (through [`super::jwt`]); and the one place an
//! access token is sent anywhere (distributed claims), allowed only to the
//! issuer's host or configured hosts over https.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use openidconnect::{AccessTokenHash, ClaimsVerificationError, Nonce, SignatureVerificationError};
use serde_json::Value;

use super::jwt::{self, Expectations, JwtError, LogoutClaims};
use super::{Metadata, OidcError, OidcProvider};
use crate::identity::Claims;
use crate::jws::{self, JwsError, Verified};

/// Which ID token check failed, as a value tests can name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenCheck {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("issued too long ago")]
    IssuedTooLongAgo,
    #[error("nonce missing or not the login's")]
    Nonce,
    #[error("signature algorithm not allowed")]
    Algorithm,
    #[error("no key in the provider's JWKS matches the token's key id")]
    NoMatchingKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("{0}")]
    Other(String),
}

/// Markers the iat verifier puts in its error, read back below.
const IAT_FUTURE: &str = "iat: issued in the future";
const IAT_OLD: &str = "iat: issued too long ago";

fn classify(error: &ClaimsVerificationError) -> IdTokenCheck {
    // openidconnect reports the iat verifier's refusal as `Expired`.
    let message = error.to_string();
    if message.contains(IAT_FUTURE) {
        return IdTokenCheck::IssuedInFuture;
    }
    if message.contains(IAT_OLD) {
        return IdTokenCheck::IssuedTooLongAgo;
    }
    match error {
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenCheck::Issuer,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenCheck::Audience,
        ClaimsVerificationError::Expired(_) => IdTokenCheck::Expired,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenCheck::Nonce,
        ClaimsVerificationError::SignatureVerification(e) => match e {
            SignatureVerificationError::DisallowedAlg(_) | SignatureVerificationError::UnsupportedAlg(_) => {
                IdTokenCheck::Algorithm
            }
            SignatureVerificationError::NoMatchingKey => IdTokenCheck::NoMatchingKey,
            SignatureVerificationError::CryptoError(_) => IdTokenCheck::Signature,
            other => IdTokenCheck::Other(other.to_string()),
        },
        other => IdTokenCheck::Other(other.to_string()),
    }
}

impl OidcProvider {
    /// Verifies an ID token (signature, iss, aud, azp, exp/iat with skew,
    /// nonce, at_hash), re-fetching keys once on an unknown `kid`.
    pub(super) async fn verify_id_token(
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
            let now: DateTime<Utc> = Utc.timestamp_opt(self.clock.now(), 0).single().unwrap_or_default();
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(self.allowed_algs.clone())
                // exp is compared with this clock: lenient by the skew, no more.
                .set_time_fn(move || now - skew)
                .set_issue_time_verifier_fn(move |iat: DateTime<Utc>| {
                    if iat > now + skew {
                        Err(format!("{IAT_FUTURE} ({iat})"))
                    } else if iat < now - skew - chrono::Duration::minutes(10) {
                        Err(format!("{IAT_OLD} ({iat})"))
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
                        .map_err(|e| OidcError::IdToken(classify(&e)))?;
                    if let Some(azp) = claims.authorized_party() {
                        if azp.as_str() != self.client_id {
                            return Err(OidcError::WrongAuthorizedParty);
                        }
                    } else if claims.audiences().len() > 1 {
                        return Err(OidcError::WrongAuthorizedParty);
                    }
                    if let Some(expected) = claims.access_token_hash() {
                        let malformed =
                            |e: &dyn std::fmt::Display| OidcError::IdToken(IdTokenCheck::Malformed(e.to_string()));
                        let alg = id_token.signing_alg().map_err(|e| malformed(&e))?;
                        let key = id_token.signing_key(&verifier).map_err(|e| malformed(&e))?;
                        let actual = AccessTokenHash::from_token(access_token, alg, key).map_err(|e| malformed(&e))?;
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
                        None => return Err(OidcError::IdToken(IdTokenCheck::NoMatchingKey)),
                    }
                }
                Err(e) => return Err(OidcError::IdToken(classify(&e))),
            }
        }
    }

    fn expectations<'a>(&'a self, audiences: &'a [String], require_exp: bool) -> Expectations<'a> {
        Expectations {
            issuer: &self.issuer,
            audiences,
            now: self.clock.now(),
            skew: i64::try_from(self.skew.as_secs()).unwrap_or(60),
            require_exp,
        }
    }

    async fn verify_signature(&self, token: &str) -> Result<Verified, OidcError> {
        let metadata = self.metadata().await?;
        let verified = match jws::verify_signature(token, metadata.jwks(), &self.allowed_algs) {
            Err(JwsError::NoMatchingKey) => {
                let updated = self.refresh_jwks(&metadata).await.ok_or(JwsError::NoMatchingKey);
                updated.and_then(|updated| jws::verify_signature(token, updated.jwks(), &self.allowed_algs))
            }
            other => other,
        };
        Ok(verified.map_err(JwtError::from)?)
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

    /// A bearer JWT from this provider, as a session-less login: an access
    /// token (RFC 9068 `at+jwt`, or a JWT for one of `bearer_audiences`).
    /// The client's own ID tokens are refused unless the operator opted in:
    /// they prove a login to doorward, not a grant to call an API.
    pub async fn verify_bearer(&self, token: &str) -> Result<Claims, OidcError> {
        let verified = self.verify_signature(token).await?;
        let access_token_typ = verified
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
        let for_this_client = match verified.claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.client_id.as_str())),
            _ => false,
        };
        let looks_like_id_token = !access_token_typ && (for_this_client || verified.claims.contains_key("nonce"));
        let mut audiences = self.bearer_audiences.clone();
        if looks_like_id_token {
            if !self.id_token_as_bearer {
                return Err(JwtError::IdTokenAsBearer.into());
            }
            audiences.push(self.client_id.clone());
        } else if audiences.is_empty() {
            return Err(JwtError::WrongAudience.into());
        }
        jwt::check_common(&verified.claims, &self.expectations(&audiences, true))?;
        if verified
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(JwtError::MissingClaim("sub").into());
        }
        self.check_email_verified(&verified.claims)?;
        Ok(verified.claims)
    }

    /// GETs a JSON document with the access token as bearer credential.
    pub(super) async fn get_json(&self, url: &str, access_token: &str, what: &str) -> Result<Value, OidcError> {
        let request = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Userinfo(format!("{what}: {e}")))?;
        let endpoint = if what == "userinfo" { "userinfo" } else { "claim_source" };
        let response = self.http.send(endpoint, request).await?;
        if !response.status().is_success() {
            return Err(OidcError::Userinfo(format!("{what} answered {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|e| OidcError::Userinfo(format!("{what}: not JSON: {e}")))
    }

    /// Fetches a distributed claim (OIDC Core §5.6.2) from `endpoint` with
    /// the access token, only from the issuer's host or `claim_source_hosts`
    /// and only over https (loopback http for tests): a claim source named
    /// in a token must not be a way to send the token elsewhere. Accepts a
    /// JSON object holding the claim, or a Graph-style `{"value": [...]}`.
    pub async fn fetch_distributed_claim(
        &self,
        endpoint: &str,
        access_token: &str,
        claim: &str,
    ) -> Result<Value, OidcError> {
        let refused = || OidcError::ClaimSourceNotAllowed(endpoint.to_string());
        let url = url::Url::parse(endpoint).map_err(|_| refused())?;
        let host = url.host_str().ok_or_else(refused)?.to_ascii_lowercase();
        let issuer_host = url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let host_ok = issuer_host.as_deref() == Some(host.as_str())
            || self.claim_source_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
        if !host_ok || !self.acceptable_url(endpoint) || !url.username().is_empty() {
            return Err(refused());
        }
        let body = self.get_json(endpoint, access_token, "claim source").await?;
        body.get(claim)
            .or_else(|| body.get("value"))
            .cloned()
            .ok_or_else(|| OidcError::Userinfo(format!("the claim source has no `{claim}`")))
    }
}
