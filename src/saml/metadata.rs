//! Both sides' metadata: the IdP's (its entity id, endpoints and signing
//! certificates, from a file or a URL the provider layer re-reads on a
//! schedule, the last good copy kept when that fails) and doorward's own,
//! which an IdP admin imports.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use doorward_xmldsig::CertificateKey;
use openssl::x509::X509;
use samael::metadata::{EntityDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING};

use super::xml::{escape, refuse_dtd};
use super::{MetadataSource, SamlError, SamlProvider};

/// Largest metadata document read.
const MAX_METADATA: usize = 1 << 20;

/// What doorward needs from the IdP's metadata.
pub struct IdpMetadata {
    pub entity_id: String,
    /// SingleSignOnService, HTTP-Redirect binding.
    pub sso_url: String,
    /// SingleLogoutService, HTTP-Redirect binding (Location, ResponseLocation).
    pub slo_url: Option<String>,
    pub slo_response_url: Option<String>,
    /// Signing certificates (several during a rotation), each loaded into
    /// libxmlsec1 once, here, and reused by every signature check until
    /// the metadata is replaced.
    pub certificates: Vec<CertificateKey>,
    pub x509: Vec<X509>,
}

impl std::fmt::Debug for IdpMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpMetadata")
            .field("entity_id", &self.entity_id)
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

impl IdpMetadata {
    /// Reads an IdP's `EntityDescriptor`. Without a signing certificate it
    /// is refused: samael would otherwise skip signature checks entirely.
    pub fn parse(text: &str) -> Result<Self, SamlError> {
        if text.len() > MAX_METADATA {
            return Err(SamlError::Metadata("larger than 1 MiB".into()));
        }
        refuse_dtd(text)?;
        let descriptor: EntityDescriptor = text
            .parse()
            .map_err(|e| SamlError::Metadata(format!("not SAML metadata: {e}")))?;
        let entity_id = descriptor
            .entity_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| SamlError::Metadata("no entityID".into()))?;
        let idp = descriptor
            .idp_sso_descriptors
            .as_ref()
            .and_then(|d| d.first())
            .ok_or_else(|| SamlError::Metadata("no IDPSSODescriptor".into()))?;
        let sso_url = idp
            .single_sign_on_services
            .iter()
            .find(|s| s.binding == HTTP_REDIRECT_BINDING)
            .map(|s| s.location.clone())
            .ok_or_else(|| SamlError::Metadata("no HTTP-Redirect SingleSignOnService".into()))?;
        let slo = idp
            .single_logout_services
            .iter()
            .find(|s| s.binding == HTTP_REDIRECT_BINDING);
        let signing: Vec<_> = {
            let marked: Vec<_> = idp.key_descriptors.iter().filter(|k| k.is_signing()).collect();
            if marked.is_empty() {
                idp.key_descriptors.iter().filter(|k| k.key_use.is_none()).collect()
            } else {
                marked
            }
        };
        let mut certificates = Vec::new();
        let mut x509 = Vec::new();
        for descriptor in signing {
            for text in descriptor.key_info.x509_data.iter().flat_map(|d| d.certificates.iter()) {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let der = STANDARD
                    .decode(compact)
                    .map_err(|_| SamlError::Metadata("a signing certificate is not base64".into()))?;
                let cert = X509::from_der(&der)
                    .map_err(|e| SamlError::Metadata(format!("a signing certificate does not parse: {e}")))?;
                let key = CertificateKey::from_der(&der)
                    .map_err(|e| SamlError::Metadata(format!("a signing certificate: {e}")))?;
                x509.push(cert);
                certificates.push(key);
            }
        }
        if certificates.is_empty() {
            return Err(SamlError::NoIdpCertificates);
        }
        Ok(Self {
            entity_id,
            sso_url,
            slo_url: slo.map(|s| s.location.clone()),
            slo_response_url: slo.and_then(|s| s.response_location.clone()),
            certificates,
            x509,
        })
    }
}

/// What an IdP may encrypt assertions with (CBC only under a signed
/// Response: see `decrypt`).
const ENCRYPTION_METHODS: [&str; 6] = [
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
];

impl SamlProvider {
    /// Reads the metadata from its URL (a file was read at start).
    async fn fetch_metadata(&self) -> Result<(), SamlError> {
        let MetadataSource::Url(url) = &self.source else {
            return Ok(());
        };
        let request = http::Request::get(url.as_str())
            .body(Vec::new())
            .map_err(|e| SamlError::Metadata(format!("{url}: {e}")))?;
        let response = self
            .http
            .send("metadata", request)
            .await
            .map_err(|e| SamlError::Metadata(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(SamlError::Metadata(format!("{url} answered {}", response.status())));
        }
        let text = String::from_utf8(response.into_body()).map_err(|_| SamlError::NotUtf8)?;
        let metadata = IdpMetadata::parse(&text)?;
        tracing::info!(provider = %self.name, entity_id = %metadata.entity_id, certificates = metadata.certificates.len(), "SAML IdP metadata loaded");
        self.set_metadata(metadata);
        Ok(())
    }

    /// One scheduled re-read of URL metadata (the loop, its schedule and
    /// backoff are the provider layer's); on failure the last good copy
    /// stays in use.
    pub async fn refresh_metadata(&self) -> Result<(), SamlError> {
        self.fetch_metadata().await
    }

    /// Whether the metadata comes from a URL, and so is re-read on a
    /// schedule (a file is read once, at start).
    pub fn metadata_from_url(&self) -> bool {
        matches!(self.source, MetadataSource::Url(_))
    }

    /// The configured wait between two re-reads.
    pub fn metadata_refresh(&self) -> Duration {
        self.refresh
    }

    /// doorward's SP metadata for this provider: entity id, the ACS
    /// (HTTP-POST), SLO (HTTP-Redirect and HTTP-POST), and the certificate
    /// when a key is configured (`AuthnRequestsSigned` then true).
    /// An RSA key is also offered for encryption, with the algorithms
    /// [`super::decrypt`] accepts, GCM first.
    pub fn sp_metadata(&self) -> String {
        let signed = self.sp_key.is_some();
        let rsa = self.sp_key.as_ref().is_some_and(|k| k.id() == openssl::pkey::Id::RSA);
        let key = self.sp_certificate.as_deref().map_or(String::new(), |cert| {
            let info = format!(
                "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            );
            let mut out = format!("<md:KeyDescriptor use=\"signing\">{info}</md:KeyDescriptor>");
            if rsa {
                let methods: String = ENCRYPTION_METHODS
                    .iter()
                    .map(|m| format!("<md:EncryptionMethod Algorithm=\"{m}\"/>"))
                    .collect();
                out.push_str(&format!(
                    "<md:KeyDescriptor use=\"encryption\">{info}{methods}</md:KeyDescriptor>"
                ));
            }
            out
        });
        let name_id = self.name_id_format.as_deref().map_or(String::new(), |format| {
            format!("<md:NameIDFormat>{}</md:NameIDFormat>", escape(format))
        });
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
             xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{entity}\">\
             <md:SPSSODescriptor AuthnRequestsSigned=\"{signed}\" WantAssertionsSigned=\"true\" \
             protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{key}\
             <md:SingleLogoutService Binding=\"{redirect}\" Location=\"{slo}\"/>\
             <md:SingleLogoutService Binding=\"{post}\" Location=\"{slo}\"/>{name_id}\
             <md:AssertionConsumerService Binding=\"{post}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>\
             </md:SPSSODescriptor></md:EntityDescriptor>\n",
            entity = escape(&self.sp_entity_id),
            slo = escape(&self.slo_url),
            acs = escape(&self.acs_url),
            redirect = HTTP_REDIRECT_BINDING,
            post = HTTP_POST_BINDING,
        )
    }
}
