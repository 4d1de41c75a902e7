//! `EncryptedAssertion` (XML Encryption 1.1) opened with the SP key.
//!
//! Written on openssl rather than samael's helper: that one panics on a
//! short ciphertext (and the SP's public key is in its metadata, so anyone
//! can make one that decrypts), accepts RSA PKCS#1 v1.5 key transport
//! (Bleichenbacher's oracle), and knows neither AES-256 nor SHA-256 OAEP.
//!
//! Accepted: key transport RSA-OAEP (`xmlenc#rsa-oaep-mgf1p`, or
//! `xmlenc11#rsa-oaep` with MGF1 over SHA-1 or SHA-256), OAEP digest SHA-1
//! or SHA-256; content AES-128/256-GCM, and AES-128/256-CBC only when
//! the caller has already verified a signature over the ciphertext
//! ([`Sealed::needs_integrity`]): an unauthenticated CBC ciphertext is
//! what padding-oracle attacks on XML Encryption feed on.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{decrypt_aead, Cipher, Crypter, Mode};
use quick_xml::events::Event;
use quick_xml::Reader;

use super::xml::{attributes, content, local};
use super::SamlError;

const XMLENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XMLENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// One `EncryptedKey`: the content key, wrapped for an SP key.
#[derive(Debug, Default)]
struct WrappedKey {
    algorithm: String,
    digest: Option<String>,
    mgf: Option<String>,
    cipher: String,
}

/// What an `EncryptedAssertion` holds: the content's algorithm and
/// ciphertext, and the wrapped keys (one per recipient key; IdPs rolling
/// an SP certificate send several).
#[derive(Debug, Default)]
pub struct Sealed {
    algorithm: String,
    cipher: String,
    keys: Vec<WrappedKey>,
}

fn refused(why: impl Into<String>) -> SamlError {
    SamlError::Decryption(why.into())
}

impl Sealed {
    /// Reads the (single) `EncryptedAssertion` of a document.
    pub fn read(xml: &str) -> Result<Sealed, SamlError> {
        let mut reader = Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut sealed = Sealed::default();
        let mut data_elements = 0;
        loop {
            let (element, empty) = match reader.read_event() {
                Ok(Event::Start(e)) => (e, false),
                Ok(Event::Empty(e)) => (e, true),
                Ok(Event::End(_)) => {
                    path.pop();
                    continue;
                }
                Ok(Event::Eof) => break,
                Ok(Event::DocType(_)) => return Err(SamlError::Doctype),
                Ok(_) => continue,
                Err(e) => return Err(SamlError::Malformed(format!("not well-formed XML: {e}"))),
            };
            let name = String::from_utf8_lossy(local(element.name().as_ref())).into_owned();
            let inside = path.iter().any(|p| p == "EncryptedAssertion");
            let parent = path.last().map(String::as_str);
            let in_key = path.iter().any(|p| p == "EncryptedKey");
            let algorithm = || -> Result<String, SamlError> {
                let attrs = attributes(&element)?;
                Ok(attrs
                    .into_iter()
                    .find(|(k, _)| k == "Algorithm")
                    .map(|(_, v)| v)
                    .unwrap_or_default())
            };
            match name.as_str() {
                _ if !inside => {}
                "EncryptedData" => data_elements += 1,
                "EncryptedKey" => sealed.keys.push(WrappedKey::default()),
                "EncryptionMethod" if parent == Some("EncryptedKey") => {
                    if let Some(key) = sealed.keys.last_mut() {
                        key.algorithm = algorithm()?;
                    }
                }
                "EncryptionMethod" if parent == Some("EncryptedData") => sealed.algorithm = algorithm()?,
                "DigestMethod" if in_key && parent == Some("EncryptionMethod") => {
                    if let Some(key) = sealed.keys.last_mut() {
                        key.digest = Some(algorithm()?);
                    }
                }
                "MGF" if in_key && parent == Some("EncryptionMethod") => {
                    if let Some(key) = sealed.keys.last_mut() {
                        key.mgf = Some(algorithm()?);
                    }
                }
                "CipherReference" => return Err(refused("CipherReference (detached ciphertext) is not supported")),
                "CipherValue" if !empty => {
                    let text = content(&mut reader)?;
                    match path.len().checked_sub(2).and_then(|i| path.get(i)).map(String::as_str) {
                        Some("EncryptedKey") => {
                            if let Some(key) = sealed.keys.last_mut() {
                                key.cipher = text;
                            }
                        }
                        Some("EncryptedData") => sealed.cipher = text,
                        _ => {}
                    }
                    // `content` consumed the end tag: nothing was pushed.
                    continue;
                }
                _ => {}
            }
            if !empty {
                path.push(name);
            }
        }
        if data_elements != 1 {
            return Err(refused(format!(
                "{data_elements} EncryptedData elements; exactly one is accepted"
            )));
        }
        if sealed.cipher.is_empty() {
            return Err(refused("no CipherValue in EncryptedData"));
        }
        if sealed.keys.is_empty() {
            return Err(refused(
                "no EncryptedKey (a key agreed some other way is not supported)",
            ));
        }
        Ok(sealed)
    }

    /// Whether the content algorithm is malleable (CBC), so the ciphertext
    /// must be covered by a verified signature before it is decrypted.
    pub fn needs_integrity(&self) -> bool {
        self.algorithm.ends_with("-cbc")
    }

    /// The assertion's XML: the content key unwrapped with `key` (each
    /// wrapped key is tried, for IdPs that encrypt to several SP keys),
    /// then the content decrypted. `signed_ciphertext` says whether a
    /// verified signature covers it (CBC is refused without one).
    pub fn open(&self, key: &PKey<Private>, signed_ciphertext: bool) -> Result<String, SamlError> {
        let cipher = content_cipher(&self.algorithm)?;
        if self.needs_integrity() && !signed_ciphertext {
            return Err(refused(format!(
                "{} without a signed Response: CBC is accepted only under the IdP's signature \
                 (sign the Response, or encrypt with AES-GCM)",
                self.algorithm
            )));
        }
        let ciphertext = base64(&self.cipher)?;
        let mut last = refused("no EncryptedKey");
        for wrapped in &self.keys {
            match unwrap_key(wrapped, key) {
                Ok(content_key) if content_key.len() == cipher.key_len() => {
                    let plain = decrypt_content(cipher, &self.algorithm, &content_key, &ciphertext)?;
                    return String::from_utf8(plain).map_err(|_| refused("the decrypted assertion is not UTF-8"));
                }
                Ok(content_key) => {
                    last = refused(format!(
                        "a {}-byte content key for {}",
                        content_key.len(),
                        self.algorithm
                    ))
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn base64(text: &str) -> Result<Vec<u8>, SamlError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| refused("a CipherValue is not base64"))
}

fn content_cipher(algorithm: &str) -> Result<Cipher, SamlError> {
    match algorithm
        .strip_prefix(XMLENC11)
        .or_else(|| algorithm.strip_prefix(XMLENC))
    {
        Some("aes128-gcm") => Ok(Cipher::aes_128_gcm()),
        Some("aes256-gcm") => Ok(Cipher::aes_256_gcm()),
        Some("aes128-cbc") if algorithm.starts_with(XMLENC) => Ok(Cipher::aes_128_cbc()),
        Some("aes256-cbc") if algorithm.starts_with(XMLENC) => Ok(Cipher::aes_256_cbc()),
        _ => Err(refused(format!("content encryption `{algorithm}` is not supported"))),
    }
}

fn digest(uri: Option<&str>) -> Result<&'static MdRef, SamlError> {
    match uri {
        None => Ok(Md::sha1()),
        Some(u) if u == format!("{XMLDSIG}sha1") => Ok(Md::sha1()),
        Some(u) if u == format!("{XMLENC}sha256") => Ok(Md::sha256()),
        Some(other) => Err(refused(format!("OAEP digest `{other}` is not supported"))),
    }
}

fn mgf(uri: Option<&str>) -> Result<&'static MdRef, SamlError> {
    match uri {
        None => Ok(Md::sha1()),
        Some(u) if u == format!("{XMLENC11}mgf1sha1") => Ok(Md::sha1()),
        Some(u) if u == format!("{XMLENC11}mgf1sha256") => Ok(Md::sha256()),
        Some(other) => Err(refused(format!("OAEP mask generation `{other}` is not supported"))),
    }
}

/// RSA-OAEP only: PKCS#1 v1.5 key transport is an oracle waiting to happen.
fn unwrap_key(wrapped: &WrappedKey, key: &PKey<Private>) -> Result<Vec<u8>, SamlError> {
    let (oaep_digest, mgf_digest) = match wrapped.algorithm.as_str() {
        a if a == format!("{XMLENC}rsa-oaep-mgf1p") => (digest(wrapped.digest.as_deref())?, Md::sha1()),
        a if a == format!("{XMLENC11}rsa-oaep") => (digest(wrapped.digest.as_deref())?, mgf(wrapped.mgf.as_deref())?),
        a if a == format!("{XMLENC}rsa-1_5") => {
            return Err(refused("RSA PKCS#1 v1.5 key transport is refused (use RSA-OAEP)"))
        }
        other => return Err(refused(format!("key transport `{other}` is not supported"))),
    };
    let wrapped_bytes = base64(&wrapped.cipher)?;
    let failed = |_| refused("the content key does not unwrap with the SP key");
    let mut ctx = PkeyCtx::new(key).map_err(failed)?;
    ctx.decrypt_init().map_err(failed)?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).map_err(failed)?;
    ctx.set_rsa_oaep_md(oaep_digest).map_err(failed)?;
    ctx.set_rsa_mgf1_md(mgf_digest).map_err(failed)?;
    let mut out = Vec::new();
    ctx.decrypt_to_vec(&wrapped_bytes, &mut out).map_err(failed)?;
    Ok(out)
}

/// GCM: IV (12 bytes) ‖ ciphertext ‖ tag (16). CBC: IV (16) ‖ ciphertext,
/// padded the XML Encryption way (the last byte counts the padding; the
/// other padding bytes are arbitrary, so openssl's PKCS#7 check is off).
fn decrypt_content(cipher: Cipher, algorithm: &str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, SamlError> {
    let short = || refused(format!("the {algorithm} ciphertext is too short"));
    if algorithm.ends_with("-gcm") {
        const IV: usize = 12;
        const TAG: usize = 16;
        if data.len() < IV + TAG {
            return Err(short());
        }
        let (iv, rest) = data.split_at(IV);
        let (body, tag) = rest.split_at(rest.len() - TAG);
        return decrypt_aead(cipher, key, Some(iv), &[], body, tag)
            .map_err(|_| refused("the assertion does not decrypt (GCM tag mismatch)"));
    }
    let block = cipher.block_size();
    if data.len() < 2 * block || data.len() % block != 0 {
        return Err(short());
    }
    let (iv, body) = data.split_at(block);
    let garbled = || refused("the assertion does not decrypt");
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).map_err(|_| garbled())?;
    crypter.pad(false);
    let mut out = vec![0; body.len() + block];
    let mut n = crypter.update(body, &mut out).map_err(|_| garbled())?;
    n += crypter.finalize(&mut out[n..]).map_err(|_| garbled())?;
    out.truncate(n);
    let pad = usize::from(out.last().copied().unwrap_or(0));
    if pad == 0 || pad > block || pad > out.len() {
        return Err(garbled());
    }
    out.truncate(out.len() - pad);
    Ok(out)
}

#[cfg(test)]
#[path = "decrypt_tests.rs"]
mod tests;
