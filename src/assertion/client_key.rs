//! doorward's own key at an identity provider, for `client_auth =
//! "private_key_jwt"` (RFC 7523): RSA (RS256), P-256 (ES256) or Ed25519
//! (EdDSA), read from PEM (PKCS#8, or the traditional RSA / EC forms), that
//! signs compact JWTs and publishes its public half as a JWK for
//! registration at the IdP.
//!
//! P-256 and Ed25519 keys are the assertion's [`SigningKey`]s; RSA lives
//! only here, because IdPs (Entra ID, older Okta set-ups) still ask for it
//! while doorward's own assertions never use it.

use std::str::FromStr;

use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use serde_json::{json, Value};

use super::keys::{b64, thumbprint, SigningKey};

/// RSA keys shorter than this are refused (NIST SP 800-131A).
const RSA_MIN_BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ClientKeyError {
    #[error("cannot read client key {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(
        "{path} is not an RSA (2048 bits or more), P-256 or Ed25519 private key in PEM \
         (make one with `doorward keygen --client`)"
    )]
    Unsupported { path: String },
    #[error("cannot sign with the client key: {0}")]
    Sign(String),
    #[error("cannot make or encode a client key: {0}")]
    Encode(String),
}

/// The signature algorithms a client key can have, one per key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKeyAlg {
    Rs256,
    Es256,
    EdDsa,
}

impl ClientKeyAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

impl FromStr for ClientKeyAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Rs256, Self::Es256, Self::EdDsa]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("`{s}` is not one of RS256, ES256, EdDSA"))
    }
}

enum Kind {
    Rsa(PKey<Private>),
    /// Boxed: an Ed25519 key with its precomputed halves is large.
    Jws(Box<SigningKey>),
}

/// A certificate's thumbprints: the JWS header parameters (RFC 7515
/// §4.1.7–8) by which an IdP that registered a certificate for the key
/// rather than the key (Entra ID) finds it. Made from a certificate by
/// `client_certificate`, which also makes sure it certifies this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X5t {
    /// `x5t`: base64url SHA-1 of the certificate's DER.
    pub sha1: String,
    /// `x5t#S256`: base64url SHA-256 of the certificate's DER.
    pub sha256: String,
}

/// A client's private key and its RFC 7638 thumbprint (the default `kid`).
pub struct ClientKey {
    kind: Kind,
    thumbprint: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientKey({}, kid {}, [redacted])",
            self.alg().as_str(),
            self.thumbprint
        )
    }
}

fn rsa_public(key: &PKey<Private>) -> Option<(String, String)> {
    let rsa = key.rsa().ok()?;
    Some((b64(&rsa.n().to_vec()), b64(&rsa.e().to_vec())))
}

impl ClientKey {
    /// Reads any PEM private key openssl understands and keeps it when it
    /// is one doorward can sign client assertions with. `path` only names
    /// the key in errors (never its contents).
    pub fn from_pem(pem: &str, path: &str) -> Result<Self, ClientKeyError> {
        let unsupported = || ClientKeyError::Unsupported { path: path.to_string() };
        // PKCS#8 as the assertion keys are written (ed25519-dalek's v2
        // encoding is one openssl does not read).
        if let Ok(key) = SigningKey::from_pem(pem, path) {
            return Ok(Self::jws(key));
        }
        let key = PKey::private_key_from_pem(pem.as_bytes()).map_err(|_| unsupported())?;
        match key.id() {
            Id::RSA if key.bits() >= RSA_MIN_BITS => {
                let (n, e) = rsa_public(&key).ok_or_else(unsupported)?;
                let thumbprint = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
                Ok(Self {
                    kind: Kind::Rsa(key),
                    thumbprint,
                })
            }
            // Through PKCS#8 so that SEC1 ("EC PRIVATE KEY") files load too;
            // the assertion key type then refuses every curve but P-256.
            Id::EC | Id::ED25519 => {
                let pkcs8 = key.private_key_to_pem_pkcs8().map_err(|_| unsupported())?;
                let pkcs8 = String::from_utf8(pkcs8).map_err(|_| unsupported())?;
                SigningKey::from_pem(&pkcs8, path)
                    .map(Self::jws)
                    .map_err(|_| unsupported())
            }
            _ => Err(unsupported()),
        }
    }

    fn jws(key: SigningKey) -> Self {
        Self {
            thumbprint: key.kid().to_string(),
            kind: Kind::Jws(Box::new(key)),
        }
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, ClientKeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| ClientKeyError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_pem(&pem, &display)
    }

    /// A fresh key (for `doorward keygen --client`): RSA 2048, P-256 or
    /// Ed25519.
    pub fn generate(alg: ClientKeyAlg) -> Result<Self, ClientKeyError> {
        let encode = |e: openssl::error::ErrorStack| ClientKeyError::Encode(e.to_string());
        let key = match alg {
            ClientKeyAlg::Rs256 => PKey::from_rsa(openssl::rsa::Rsa::generate(RSA_MIN_BITS).map_err(encode)?),
            ClientKeyAlg::Es256 => {
                let group =
                    openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).map_err(encode)?;
                PKey::from_ec_key(openssl::ec::EcKey::generate(&group).map_err(encode)?)
            }
            ClientKeyAlg::EdDsa => PKey::generate_ed25519(),
        }
        .map_err(encode)?;
        let pem = key.private_key_to_pem_pkcs8().map_err(encode)?;
        let pem = String::from_utf8(pem).map_err(|e| ClientKeyError::Encode(e.to_string()))?;
        Self::from_pem(&pem, "the generated key")
    }

    /// The private key, PKCS#8 PEM as openssl writes it (so that other
    /// tools, and the IdP's documentation's commands, read it too).
    pub fn to_pem(&self) -> Result<String, ClientKeyError> {
        let encode = |e: openssl::error::ErrorStack| ClientKeyError::Encode(e.to_string());
        let pem = match &self.kind {
            Kind::Rsa(key) => key.private_key_to_pem_pkcs8().map_err(encode)?,
            Kind::Jws(key) => match &**key {
                SigningKey::Ed25519 { key, .. } => PKey::private_key_from_raw_bytes(&key.to_bytes(), Id::ED25519)
                    .and_then(|key| key.private_key_to_pem_pkcs8())
                    .map_err(encode)?,
                SigningKey::P256 { .. } => {
                    return key.to_pem().ok_or_else(|| ClientKeyError::Encode("PKCS#8".into()));
                }
            },
        };
        String::from_utf8(pem).map_err(|e| ClientKeyError::Encode(e.to_string()))
    }

    /// The RFC 7638 thumbprint, the `kid` when none is configured.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    pub fn alg(&self) -> ClientKeyAlg {
        match &self.kind {
            Kind::Rsa(_) => ClientKeyAlg::Rs256,
            Kind::Jws(key) => match **key {
                SigningKey::P256 { .. } => ClientKeyAlg::Es256,
                SigningKey::Ed25519 { .. } => ClientKeyAlg::EdDsa,
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ClientKeyError> {
        match &self.kind {
            Kind::Rsa(key) => {
                let sign = |e: openssl::error::ErrorStack| ClientKeyError::Sign(e.to_string());
                let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).map_err(sign)?;
                signer.sign_oneshot_to_vec(message).map_err(sign)
            }
            Kind::Jws(key) => Ok(key.sign(message)),
        }
    }

    /// The key as openssl holds it, whatever type it is (to compare with a
    /// certificate's public key, or to sign one).
    pub(super) fn openssl_key(&self) -> Result<PKey<Private>, ClientKeyError> {
        let pem = self.to_pem()?;
        PKey::private_key_from_pem(pem.as_bytes()).map_err(|e| ClientKeyError::Encode(e.to_string()))
    }

    /// A compact JWS of `claims` (`typ: JWT`, this key's `alg`, `kid`, and
    /// with a certificate's thumbprints `x5t` and `x5t#S256`).
    pub fn sign_jwt(&self, kid: &str, x5t: Option<&X5t>, claims: &Value) -> Result<String, ClientKeyError> {
        let mut header = json!({"alg": self.alg().as_str(), "typ": "JWT", "kid": kid});
        if let Some(x5t) = x5t {
            header["x5t"] = Value::String(x5t.sha1.clone());
            header["x5t#S256"] = Value::String(x5t.sha256.clone());
        }
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }

    /// The public half as a JWK with `kid` (what the IdP registers).
    pub fn public_jwk(&self, kid: &str) -> Value {
        let mut jwk = match &self.kind {
            Kind::Rsa(key) => {
                let (n, e) = rsa_public(key).unwrap_or_default();
                json!({"kty": "RSA", "n": n, "e": e, "use": "sig", "alg": "RS256"})
            }
            Kind::Jws(key) => key.public_jwk(),
        };
        jwk["kid"] = Value::String(kid.to_string());
        jwk
    }
}

#[cfg(test)]
mod tests {
    use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
    use openidconnect::JsonWebKey;

    use super::*;

    fn signing_alg(alg: ClientKeyAlg) -> CoreJwsSigningAlgorithm {
        match alg {
            ClientKeyAlg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            ClientKeyAlg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            ClientKeyAlg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
        }
    }

    #[test]
    fn every_key_type_signs_what_its_published_jwk_verifies() {
        for alg in [ClientKeyAlg::Rs256, ClientKeyAlg::Es256, ClientKeyAlg::EdDsa] {
            let key = ClientKey::generate(alg).expect("generate");
            assert_eq!(key.alg(), alg);
            let pem = key.to_pem().expect("pem");
            let again = ClientKey::from_pem(&pem, "mem").expect("reads back");
            assert!(
                PKey::private_key_from_pem(pem.as_bytes()).is_ok(),
                "{alg:?}: openssl reads it"
            );
            assert_eq!(again.thumbprint(), key.thumbprint(), "{alg:?}: same key, same kid");

            let token = key.sign_jwt("k1", None, &json!({"iss": "c"})).expect("sign");
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[0]).expect("b64"),
            )
            .expect("header");
            assert_eq!(header, json!({"alg": alg.as_str(), "typ": "JWT", "kid": "k1"}));

            // An independent verifier (openidconnect's) with only the JWK.
            let jwk: CoreJsonWebKey = serde_json::from_value(key.public_jwk("k1")).expect("jwk parses");
            let signature =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[2]).expect("b64");
            let message = format!("{}.{}", parts[0], parts[1]);
            jwk.verify_signature(&signing_alg(alg), message.as_bytes(), &signature)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            let mut tampered = message.clone().into_bytes();
            tampered[message.len() - 1] ^= 1;
            assert!(jwk.verify_signature(&signing_alg(alg), &tampered, &signature).is_err());
            assert!(format!("{key:?}").contains("redacted"));
        }
    }

    #[test]
    fn traditional_pem_forms_load_and_weak_or_foreign_keys_do_not() {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let pkcs1 = String::from_utf8(rsa.private_key_to_pem().expect("pem")).expect("utf8");
        assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
        assert_eq!(
            ClientKey::from_pem(&pkcs1, "rsa.pem").expect("pkcs1").alg(),
            ClientKeyAlg::Rs256
        );

        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("group");
        let ec = openssl::ec::EcKey::generate(&group).expect("ec");
        let sec1 = String::from_utf8(ec.private_key_to_pem().expect("pem")).expect("utf8");
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
        assert_eq!(
            ClientKey::from_pem(&sec1, "ec.pem").expect("sec1").alg(),
            ClientKeyAlg::Es256
        );

        let short = openssl::rsa::Rsa::generate(1024).expect("rsa");
        let short = String::from_utf8(short.private_key_to_pem().expect("pem")).expect("utf8");
        let p384 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).expect("group");
        let p384 = openssl::ec::EcKey::generate(&p384).expect("ec");
        let p384 = String::from_utf8(p384.private_key_to_pem().expect("pem")).expect("utf8");
        for (pem, what) in [
            (short, "RSA 1024"),
            (p384, "P-384"),
            ("not a key".to_string(), "garbage"),
        ] {
            match ClientKey::from_pem(&pem, "/etc/doorward/client.pem") {
                Err(e @ ClientKeyError::Unsupported { .. }) => {
                    assert!(e.to_string().starts_with("/etc/doorward/client.pem is not"), "{e}")
                }
                other => panic!("{what} was not refused: {other:?}"),
            }
        }
        assert!(matches!(
            ClientKey::from_file(std::path::Path::new("/nonexistent/client.pem")),
            Err(ClientKeyError::Read { .. })
        ));
    }

    #[test]
    fn algorithm_names_parse_as_jose_spells_them() {
        assert_eq!("es256".parse(), Ok(ClientKeyAlg::Es256));
        assert_eq!("EdDSA".parse(), Ok(ClientKeyAlg::EdDsa));
        assert_eq!("RS256".parse(), Ok(ClientKeyAlg::Rs256));
        assert!("HS256".parse::<ClientKeyAlg>().is_err());
    }
}
