//! The X.509 certificate an identity provider registered for doorward's
//! client key (`client_certificate`, with `private_key_jwt`).
//!
//! Microsoft Entra ID registers a certificate rather than a key and finds it
//! by the client assertion's `x5t` header: the base64url SHA-1 of the
//! certificate's DER (RFC 7515 §4.1.7), or `x5t#S256`, its SHA-256
//! (§4.1.8). doorward sends both. The certificate is only read for those
//! thumbprints; its public key must be the client key's, or the IdP would
//! look up one key and verify with another, which fails at every login and
//! says nothing useful about why.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::x509::{X509Name, X509};

use super::client_key::{ClientKey, X5t};
use super::keys::b64;

/// A certificate this close to its end gets a warning at every load.
const EXPIRY_WARNING_DAYS: i32 = 30;

/// What to say of a certificate with `days_left` until its end, if
/// anything.
fn expiry_warning(days_left: i32) -> Option<String> {
    match days_left {
        days if days < 0 => Some(format!(
            "client_certificate expired {} days ago: the IdP will refuse its assertions",
            -days
        )),
        days if days < EXPIRY_WARNING_DAYS => Some(format!(
            "client_certificate expires in {days} days: register a new one at the IdP"
        )),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientCertificateError {
    #[error("cannot read client certificate {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not an X.509 certificate in PEM")]
    NotACertificate { path: String },
    #[error("client_certificate does not belong to client_key: {path} certifies another public key")]
    OtherKey { path: String },
    #[error("cannot make or encode a client certificate: {0}")]
    Encode(String),
}

/// A certificate for the client key, kept as the JWS header values that
/// name it: `x5t` (SHA-1, what Entra ID matches) and `x5t#S256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    thumbprints: X5t,
}

impl ClientCertificate {
    /// Reads the first certificate in `pem` and keeps its thumbprints when
    /// it certifies `key`'s public key. `path` only names the file in
    /// errors.
    pub fn from_pem(pem: &str, path: &str, key: &ClientKey) -> Result<Self, ClientCertificateError> {
        let not_a_certificate = || ClientCertificateError::NotACertificate { path: path.to_string() };
        let cert = X509::from_pem(pem.as_bytes()).map_err(|_| not_a_certificate())?;
        let public = cert.public_key().map_err(|_| not_a_certificate())?;
        let private = key
            .openssl_key()
            .map_err(|e| ClientCertificateError::Encode(e.to_string()))?;
        if !public.public_eq(&private) {
            return Err(ClientCertificateError::OtherKey { path: path.to_string() });
        }
        let digest = |md| cert.digest(md).map(|d| b64(&d)).map_err(|_| not_a_certificate());
        // The IdP refuses assertions naming an expired certificate: say so
        // at start and at every reload, before logins fail.
        let days_left = Asn1Time::days_from_now(0)
            .ok()
            .and_then(|now| now.diff(cert.not_after()).ok())
            .map(|left| left.days);
        if let Some(warning) = days_left.and_then(expiry_warning) {
            tracing::warn!(path, "{warning}");
        }
        Ok(Self {
            thumbprints: X5t {
                sha1: digest(MessageDigest::sha1())?,
                sha256: digest(MessageDigest::sha256())?,
            },
        })
    }

    pub fn from_file(path: &std::path::Path, key: &ClientKey) -> Result<Self, ClientCertificateError> {
        let display = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| ClientCertificateError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_pem(&pem, &display, key)
    }

    /// What the client assertion's header names the certificate by.
    pub fn thumbprints(&self) -> &X5t {
        &self.thumbprints
    }

    /// `x5t`: base64url SHA-1 of the DER (Entra ID's certificate thumbprint).
    pub fn x5t(&self) -> &str {
        &self.thumbprints.sha1
    }

    /// `x5t#S256`: base64url SHA-256 of the DER.
    pub fn x5t_s256(&self) -> &str {
        &self.thumbprints.sha256
    }

    /// A self-signed certificate for `key` (for `doorward keygen --client
    /// --certificate`), subject `CN=common_name`, valid `days` from now; PEM.
    /// What the IdP trusts is the key: the signature on a certificate it
    /// registered by upload proves nothing more, so self-signed is enough.
    pub fn self_signed(key: &ClientKey, common_name: &str, days: u32) -> Result<String, ClientCertificateError> {
        let encode = |e: openssl::error::ErrorStack| ClientCertificateError::Encode(e.to_string());
        let private = key
            .openssl_key()
            .map_err(|e| ClientCertificateError::Encode(e.to_string()))?;
        let mut name = X509Name::builder().map_err(encode)?;
        name.append_entry_by_text("CN", common_name).map_err(encode)?;
        let name = name.build();
        let mut serial = BigNum::new().map_err(encode)?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false).map_err(encode)?;
        let mut builder = X509::builder().map_err(encode)?;
        builder.set_version(2).map_err(encode)?;
        let serial = serial.to_asn1_integer().map_err(encode)?;
        builder.set_serial_number(&serial).map_err(encode)?;
        builder.set_subject_name(&name).map_err(encode)?;
        builder.set_issuer_name(&name).map_err(encode)?;
        builder.set_pubkey(&private).map_err(encode)?;
        let not_before = Asn1Time::days_from_now(0).map_err(encode)?;
        let not_after = Asn1Time::days_from_now(days).map_err(encode)?;
        builder.set_not_before(&not_before).map_err(encode)?;
        builder.set_not_after(&not_after).map_err(encode)?;
        // Ed25519 signs the message itself: openssl takes no digest for it.
        let digest = match private.id() {
            Id::ED25519 => MessageDigest::null(),
            _ => MessageDigest::sha256(),
        };
        builder.sign(&private, digest).map_err(encode)?;
        let pem = builder.build().to_pem().map_err(encode)?;
        String::from_utf8(pem).map_err(|e| ClientCertificateError::Encode(e.to_string()))
    }
}

#[cfg(test)]
#[path = "client_certificate_tests.rs"]
mod tests;
