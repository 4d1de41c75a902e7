//! Signing keys for identity assertions: Ed25519 (EdDSA, the default) or
//! P-256 (ES256), read from PKCS#8 PEM files, published as a JWKS. Key ids
//! are RFC 7638 thumbprints, so the same key always has the same `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read signing key {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not an Ed25519 or P-256 private key in PKCS#8 PEM (make one with `doorward keygen --signing`)")]
    Unsupported { path: String },
}

/// One private key and what is published of it.
pub enum SigningKey {
    Ed25519 {
        key: ed25519_dalek::SigningKey,
        kid: String,
    },
    P256 {
        key: p256::ecdsa::SigningKey,
        kid: String,
    },
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, kid {}, [redacted])", self.alg(), self.kid())
    }
}

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
pub(super) fn thumbprint(canonical: &str) -> String {
    b64(&Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    pub fn from_pem(pem: &str, path: &str) -> Result<Self, KeyFileError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Self::ed25519(key));
        }
        if let Ok(key) = <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem) {
            return Ok(Self::p256(key));
        }
        Err(KeyFileError::Unsupported { path: path.to_string() })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyFileError> {
        let display = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_pem(&pem, &display)
    }

    pub fn ed25519(key: ed25519_dalek::SigningKey) -> Self {
        let x = b64(key.verifying_key().as_bytes());
        let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
        Self::Ed25519 { key, kid }
    }

    pub fn p256(key: p256::ecdsa::SigningKey) -> Self {
        let (x, y) = p256_xy(&key);
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        Self::P256 { key, kid }
    }

    /// A fresh Ed25519 key (for `keygen`, and when none is configured).
    pub fn generate() -> Self {
        Self::ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    pub fn to_pem(&self) -> Option<String> {
        match self {
            Self::Ed25519 { key, .. } => {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;
                key.to_pkcs8_pem(Default::default()).ok().map(|p| p.to_string())
            }
            Self::P256 { key, .. } => {
                use p256::pkcs8::EncodePrivateKey as _;
                key.to_pkcs8_pem(Default::default()).ok().map(|p| p.to_string())
            }
        }
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Ed25519 { kid, .. } | Self::P256 { kid, .. } => kid,
        }
    }

    /// The JWS `alg`.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519 { .. } => "EdDSA",
            Self::P256 { .. } => "ES256",
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed25519 { key, .. } => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
            Self::P256 { key, .. } => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> Value {
        match self {
            Self::Ed25519 { key, kid } => json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().as_bytes()),
                "use": "sig", "alg": "EdDSA", "kid": kid,
            }),
            Self::P256 { key, kid } => {
                let (x, y) = p256_xy(key);
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid})
            }
        }
    }
}

fn p256_xy(key: &p256::ecdsa::SigningKey) -> (String, String) {
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    // Uncompressed SEC1: 0x04 || x (32) || y (32).
    if bytes.len() == 65 {
        (b64(&bytes[1..33]), b64(&bytes[33..65]))
    } else {
        (String::new(), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key_id() {
        let key = SigningKey::generate();
        let pem = key.to_pem().expect("pem");
        let again = SigningKey::from_pem(&pem, "mem").expect("reads back");
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.alg(), "EdDSA");
        assert!(format!("{key:?}").contains("redacted"));
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "x").is_err());
    }

    #[test]
    fn p256_keys_sign_64_byte_signatures() {
        let key = SigningKey::p256(p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("scalar"));
        assert_eq!(key.alg(), "ES256");
        assert_eq!(key.sign(b"m").len(), 64);
        let jwk = key.public_jwk();
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["x"].as_str().map(str::len), Some(43));
    }
}
