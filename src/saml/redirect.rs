//! The HTTP-Redirect binding (SAML Bindings §3.4): a message DEFLATEd,
//! base64-encoded and put in the query, with the signature over the exact
//! query octets (`SAMLRequest|SAMLResponse`, `RelayState`, `SigAlg`, in that
//! order). Incoming signatures are checked over the raw query as received,
//! never a re-encoded one (IdPs differ in how they percent-encode).

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::SamlError;

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

/// Largest inflated message: DEFLATE bombs stop here.
const MAX_INFLATED: u64 = 512 << 10;

/// Characters left unescaped in query values (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A redirect URL to `destination` carrying `message` (XML) as `param`
/// (`SAMLRequest` or `SAMLResponse`), signed when a key is given.
pub fn url(
    destination: &str,
    param: &str,
    message: &str,
    relay_state: Option<&str>,
    key: Option<&PKey<Private>>,
) -> Result<String, SamlError> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    deflater
        .write_all(message.as_bytes())
        .map_err(|e| SamlError::Signing(e.to_string()))?;
    let deflated = deflater.finish().map_err(|e| SamlError::Signing(e.to_string()))?;
    let mut query = format!("{param}={}", encode(&STANDARD.encode(deflated)));
    if let Some(relay) = relay_state {
        query.push_str("&RelayState=");
        query.push_str(&encode(relay));
    }
    if let Some(key) = key {
        let (alg, digest) = match key.id() {
            Id::EC => (ECDSA_SHA256, MessageDigest::sha256()),
            _ => (RSA_SHA256, MessageDigest::sha256()),
        };
        query.push_str("&SigAlg=");
        query.push_str(&encode(alg));
        let signature = sign(key, digest, query.as_bytes())?;
        query.push_str("&Signature=");
        query.push_str(&encode(&STANDARD.encode(signature)));
    }
    // An IdP URL may carry its own query; ours is appended after it (and
    // only ours is signed, as the binding says).
    let joiner = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{joiner}{query}"))
}

fn sign(key: &PKeyRef<Private>, digest: MessageDigest, data: &[u8]) -> Result<Vec<u8>, SamlError> {
    let fail = |e: openssl::error::ErrorStack| SamlError::Signing(e.to_string());
    let mut signer = Signer::new(digest, key).map_err(fail)?;
    signer.update(data).map_err(fail)?;
    let der = signer.sign_to_vec().map_err(fail)?;
    if key.id() != Id::EC {
        return Ok(der);
    }
    // XML-DSig's ECDSA signature value is r || s, each the curve's size.
    let size = key.ec_key().map_err(fail)?.group().order_bits().div_ceil(8) as usize;
    let sig = EcdsaSig::from_der(&der).map_err(fail)?;
    let mut raw = sig.r().to_vec_padded(size as i32).map_err(fail)?;
    raw.extend(sig.s().to_vec_padded(size as i32).map_err(fail)?);
    Ok(raw)
}

/// A message that arrived by HTTP-Redirect, with its signature checked.
#[derive(Debug)]
pub struct Received {
    pub xml: String,
    pub relay_state: Option<String>,
}

/// Reads and verifies a redirect-binding message from the raw `query`.
/// The signature is required and must verify with one of `certificates`.
pub fn receive(query: &str, param: &str, certificates: &[X509], allow_sha1: bool) -> Result<Received, SamlError> {
    let mut message = None;
    let mut relay = None;
    let mut sig_alg = None;
    let mut signature = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            k if k == param => &mut message,
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(SamlError::Malformed(format!("`{key}` appears twice")));
        }
        *slot = Some(value);
    }
    let message = message.ok_or_else(|| SamlError::Malformed(format!("no {param}")))?;
    let (Some(sig_alg), Some(signature)) = (sig_alg, signature) else {
        return Err(SamlError::Unsigned);
    };
    // The signed octets are the parameters as they were sent (§3.4.4.1).
    let mut signed = format!("{param}={message}");
    if let Some(relay) = relay {
        signed.push_str("&RelayState=");
        signed.push_str(relay);
    }
    signed.push_str("&SigAlg=");
    signed.push_str(sig_alg);
    let algorithm = decode(sig_alg)?;
    let digest = match algorithm.as_str() {
        RSA_SHA256 | ECDSA_SHA256 => MessageDigest::sha256(),
        RSA_SHA512 => MessageDigest::sha512(),
        RSA_SHA1 if allow_sha1 => MessageDigest::sha1(),
        other => return Err(SamlError::SignatureAlgorithm(other.to_string())),
    };
    let signature = STANDARD
        .decode(decode(signature)?.trim())
        .map_err(|_| SamlError::NotBase64)?;
    let verified = certificates.iter().any(|cert| {
        cert.public_key()
            .is_ok_and(|key| verify(&key, digest, signed.as_bytes(), &signature))
    });
    if !verified {
        return Err(SamlError::BadSignature("the redirect signature does not verify".into()));
    }
    Ok(Received {
        xml: inflate(&decode(message)?)?,
        relay_state: relay.map(decode).transpose()?,
    })
}

fn verify(key: &PKey<Public>, digest: MessageDigest, data: &[u8], signature: &[u8]) -> bool {
    let der;
    let signature = if key.id() == Id::EC {
        // r || s back to the DER form openssl verifies.
        let half = signature.len() / 2;
        let (Ok(r), Ok(s)) = (
            BigNum::from_slice(&signature[..half]),
            BigNum::from_slice(&signature[half..]),
        ) else {
            return false;
        };
        der = match EcdsaSig::from_private_components(r, s).and_then(|sig| sig.to_der()) {
            Ok(der) => der,
            Err(_) => return false,
        };
        &der[..]
    } else {
        signature
    };
    Verifier::new(digest, key)
        .and_then(|mut verifier| {
            verifier.update(data)?;
            verifier.verify(signature)
        })
        .unwrap_or(false)
}

/// Percent-decodes a query value (a `+` stays a `+`: base64 uses it).
fn decode(value: &str) -> Result<String, SamlError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| SamlError::NotUtf8)
}

/// base64, then raw DEFLATE, bounded.
fn inflate(encoded: &str) -> Result<String, SamlError> {
    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let deflated = STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?;
    let mut inflated = Vec::new();
    DeflateDecoder::new(&deflated[..])
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| SamlError::Malformed(format!("not DEFLATE data: {e}")))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(SamlError::TooLarge);
    }
    String::from_utf8(inflated).map_err(|_| SamlError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    fn self_signed(key: &PKey<Private>) -> X509 {
        let mut builder = X509::builder().expect("builder");
        builder.set_pubkey(key).expect("pubkey");
        let digest = MessageDigest::sha256();
        builder.sign(key, digest).expect("sign");
        builder.build()
    }

    fn round_trip(key: PKey<Private>) {
        let cert = self_signed(&key);
        let url = url(
            "https://idp.test/slo?tenant=x",
            "SAMLRequest",
            "<LogoutRequest/>",
            Some("r&1"),
            Some(&key),
        )
        .expect("url");
        let query = url.split_once('?').map(|(_, q)| q).expect("query");
        let query = query
            .strip_prefix("tenant=x&")
            .expect("the IdP's own query is kept, unsigned");
        let received = receive(query, "SAMLRequest", std::slice::from_ref(&cert), false).expect("verifies");
        assert_eq!(received.xml, "<LogoutRequest/>");
        assert_eq!(received.relay_state.as_deref(), Some("r&1"));
        // Tampered message, relay state, or another key: refused.
        let tampered = query.replacen("RelayState=r", "RelayState=x", 1);
        assert!(matches!(
            receive(&tampered, "SAMLRequest", std::slice::from_ref(&cert), false),
            Err(SamlError::BadSignature(_))
        ));
        let other = self_signed(&PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key"));
        assert!(matches!(
            receive(query, "SAMLRequest", &[other], false),
            Err(SamlError::BadSignature(_))
        ));
        let unsigned = query.split("&SigAlg").next().expect("prefix");
        assert_eq!(
            receive(unsigned, "SAMLRequest", &[cert], false).err(),
            Some(SamlError::Unsigned)
        );
    }

    #[test]
    fn rsa_and_ecdsa_redirect_signatures_round_trip_and_refuse_tampering() {
        round_trip(PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key"));
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        round_trip(PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("key"));
    }

    #[test]
    fn weak_or_unknown_algorithms_and_duplicates_are_refused() {
        let sha1 = format!("SAMLRequest=x&SigAlg={}&Signature=AAAA", encode(RSA_SHA1));
        assert_eq!(
            receive(&sha1, "SAMLRequest", &[], false).err(),
            Some(SamlError::SignatureAlgorithm(RSA_SHA1.into()))
        );
        assert!(matches!(
            receive(
                "SAMLRequest=x&SAMLRequest=y&SigAlg=a&Signature=b",
                "SAMLRequest",
                &[],
                false
            ),
            Err(SamlError::Malformed(_))
        ));
    }

    #[test]
    fn deflate_bombs_are_bounded() {
        let mut deflater = DeflateEncoder::new(Vec::new(), Compression::best());
        deflater.write_all(&vec![b'a'; 4 << 20]).expect("write");
        let bomb = STANDARD.encode(deflater.finish().expect("finish"));
        assert_eq!(inflate(&bomb).err(), Some(SamlError::TooLarge));
    }
}
