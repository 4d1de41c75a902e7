//! SAML 2.0: doorward as a service provider. The IdP's metadata and keys
//! ([`metadata`]), the HTTP-Redirect binding with signed queries
//! ([`redirect`]), every check on a Response ([`response`]), single logout
//! both ways ([`logout`]) and attributes as claims ([`attributes`]).
//!
//! XML-DSig is libxmlsec1's, through `doorward-xmldsig` (each IdP key
//! loaded once, see [`dsig`]): only content a valid signature covers is
//! ever read (signature wrapping cannot substitute an assertion).
//! Around it doorward adds what XML-DSig leaves to the SP: no DTDs, one
//! assertion, bounded sizes, replay (by the caller, in the durable store),
//! exact errors for every refusal. Like `oidc`, it returns the neutral
//! [`LoginResult`](crate::login::LoginResult) and knows nothing of sessions.

mod attributes;
mod authn;
mod decrypt;
mod dsig;
mod logout;
mod metadata;
mod redirect;
mod response;
mod xml;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openssl::pkey::{PKey, Private};

use crate::clock::Clock;
use crate::config::SamlProviderConfig;
use crate::idp_http::IdpHttp;
pub use logout::{IdpLogoutRequest, NameIdHint};
pub use metadata::IdpMetadata;
pub use response::SamlLogin;

/// Why a SAML message was refused. Logged with the request id; the user
/// sees a generic page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the SAML message is larger than the limit")]
    TooLarge,
    #[error("the SAML message is not valid base64")]
    NotBase64,
    #[error("the SAML message is not UTF-8 XML")]
    NotUtf8,
    #[error("the SAML message has a DTD or entity declaration")]
    Doctype,
    #[error("the SAML message is not in UTF-8: {0}")]
    Encoding(String),
    #[error("the SAML message is malformed: {0}")]
    Malformed(String),
    #[error("the IdP's status is not Success: {0}")]
    Status(String),
    #[error("the response is for another destination: {0}")]
    WrongDestination(String),
    #[error("the response holds {0} assertions; exactly one is accepted")]
    AssertionCount(usize),
    #[error("the assertion is encrypted and no SP key is configured to decrypt it")]
    EncryptedWithoutKey,
    #[error("the encrypted assertion could not be decrypted: {0}")]
    Decryption(String),
    #[error("the message is not signed")]
    Unsigned,
    #[error("the signature does not verify with the IdP's certificates: {0}")]
    BadSignature(String),
    #[error("the issuer `{0}` is not this IdP")]
    WrongIssuer(String),
    #[error("no bearer SubjectConfirmation")]
    NoBearerConfirmation,
    #[error("the SubjectConfirmation is for another recipient: {0}")]
    WrongRecipient(String),
    #[error("InResponseTo does not match the login this browser started")]
    InResponseToMismatch,
    #[error("an unsolicited (IdP-initiated) response, and this provider does not allow them")]
    Unsolicited,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion was issued too long ago or in the future")]
    IssueInstant,
    #[error("the assertion is not meant for this service provider (audience)")]
    WrongAudience,
    #[error("the assertion has no subject NameID")]
    NoSubject,
    #[error("this assertion was already used (replay)")]
    Replayed,
    #[error("this LogoutRequest was already received (replay)")]
    ReplayedLogoutRequest,
    #[error("the IdP's metadata has no signing certificate: refusing to trust unsigned messages")]
    NoIdpCertificates,
    #[error("the IdP's metadata: {0}")]
    Metadata(String),
    #[error("the IdP's metadata is not loaded yet")]
    NoMetadata,
    #[error("signing the request: {0}")]
    Signing(String),
    #[error("the redirect signature algorithm `{0}` is not accepted")]
    SignatureAlgorithm(String),
}

/// Where the IdP metadata comes from.
enum MetadataSource {
    Url(String),
    File(PathBuf),
}

/// One SAML identity provider and doorward's service provider settings
/// for it.
pub struct SamlProvider {
    pub name: String,
    pub display_name: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub slo_url: String,
    sp_key: Option<PKey<Private>>,
    /// The SP certificate, base64 DER (for our metadata).
    sp_certificate: Option<String>,
    name_id_format: Option<String>,
    username_attribute: Option<String>,
    email_attribute: Option<String>,
    allow_unsolicited: bool,
    skew: i64,
    max_response: usize,
    allow_sha1: bool,
    source: MetadataSource,
    refresh: Duration,
    http: IdpHttp,
    clock: Clock,
    metadata: RwLock<Option<Arc<IdpMetadata>>>,
}

/// What building a provider can fail on (all of it is in the config).
#[derive(Debug, thiserror::Error)]
pub enum SamlSetupError {
    #[error("SAML provider `{name}`: {reason}")]
    Config { name: String, reason: String },
}

/// doorward's SAML endpoints, from `public_url` and the internal prefix.
pub struct SpUrls<'a> {
    pub base: &'a str,
    pub prefix: &'a str,
}

impl SamlProvider {
    pub fn new(
        config: &SamlProviderConfig,
        urls: SpUrls<'_>,
        http: IdpHttp,
        clock: Clock,
    ) -> Result<Self, SamlSetupError> {
        let fail = |reason: String| SamlSetupError::Config {
            name: config.name.clone(),
            reason,
        };
        let (sp_key, sp_certificate) = match (&config.sp_key, &config.sp_certificate) {
            (Some(key), Some(cert)) => {
                let key = std::fs::read(key).map_err(|e| fail(format!("sp_key {}: {e}", key.display())))?;
                let key = PKey::private_key_from_pem(&key)
                    .map_err(|e| fail(format!("sp_key: not a PEM private key: {e}")))?;
                let cert = std::fs::read(cert).map_err(|e| fail(format!("sp_certificate {}: {e}", cert.display())))?;
                let cert = openssl::x509::X509::from_pem(&cert)
                    .and_then(|c| c.to_der())
                    .map_err(|e| fail(format!("sp_certificate: not a PEM certificate: {e}")))?;
                use base64::Engine;
                (Some(key), Some(base64::engine::general_purpose::STANDARD.encode(cert)))
            }
            _ => (None, None),
        };
        let source = match (&config.idp_metadata_url, &config.idp_metadata_file) {
            (Some(url), _) => MetadataSource::Url(url.clone()),
            (None, Some(file)) => MetadataSource::File(file.clone()),
            (None, None) => return Err(fail("idp_metadata_url or idp_metadata_file is required".into())),
        };
        let endpoint = |path: &str| format!("{}{}/saml/{path}", urls.base, urls.prefix);
        let provider = Self {
            name: config.name.clone(),
            display_name: config.display_name.clone().unwrap_or_else(|| config.name.clone()),
            sp_entity_id: config.sp_entity_id.clone().unwrap_or_else(|| endpoint("metadata")),
            acs_url: endpoint("acs"),
            slo_url: endpoint("slo"),
            sp_key,
            sp_certificate,
            name_id_format: config.name_id_format.clone(),
            username_attribute: config.username_attribute.clone(),
            email_attribute: config.email_attribute.clone(),
            allow_unsolicited: config.allow_unsolicited,
            skew: i64::try_from(config.clock_skew.0.as_secs()).unwrap_or(60),
            max_response: usize::try_from(config.max_response_size.0).unwrap_or(usize::MAX),
            allow_sha1: config.insecure_allow_sha1,
            source,
            refresh: config.idp_metadata_refresh.0,
            http,
            clock,
            metadata: RwLock::new(None),
        };
        // A metadata file is read now, so a broken one stops the start.
        if let MetadataSource::File(path) = &provider.source {
            let text = std::fs::read_to_string(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            let metadata = IdpMetadata::parse(&text).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            provider.set_metadata(metadata);
        }
        Ok(provider)
    }

    pub fn current_metadata(&self) -> Result<Arc<IdpMetadata>, SamlError> {
        self.metadata
            .read()
            .ok()
            .and_then(|m| m.clone())
            .ok_or(SamlError::NoMetadata)
    }

    pub fn has_metadata(&self) -> bool {
        self.metadata.read().is_ok_and(|m| m.is_some())
    }

    pub fn set_metadata(&self, metadata: IdpMetadata) {
        if let Ok(mut slot) = self.metadata.write() {
            *slot = Some(Arc::new(metadata));
        }
    }

    /// The IdP's entity id, once its metadata is loaded.
    pub fn idp_entity_id(&self) -> Option<String> {
        self.current_metadata().ok().map(|m| m.entity_id.clone())
    }

    /// Whether the IdP's entity id is `issuer`; `None` before its metadata
    /// is read. Compares in place: the request path asks it per session.
    pub fn idp_entity_id_is(&self, issuer: &str) -> Option<bool> {
        let metadata = self.metadata.read().ok()?;
        metadata.as_ref().map(|m| m.entity_id == issuer)
    }
}
