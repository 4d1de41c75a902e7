//! XML-DSig verification of SAML messages over libxmlsec1, with each IdP
//! certificate loaded into libxmlsec1 once instead of on every check
//! (loading it was about a quarter of an ACS validation).
//!
//! What it verifies, for a document whose signatures must all be valid:
//! - every `<ds:Signature>` uses an allowed SignatureMethod and
//!   DigestMethods (algorithm substitution),
//! - has exactly one `<ds:Reference>`, to `#ID` of the element that holds
//!   it, and only the enveloped-signature and canonicalisation transforms
//!   (SAML Core 5.4: anything else could make the digest cover something
//!   other than that element),
//! - the document has no DTD (no entities, no DTD-declared IDs),
//! - ID values are NCNames and unique in the document (a duplicate ID is
//!   how a wrapped copy would be resolved instead of the original),
//! - verifies with one of the IdP's certificates.
//!
//! What it returns is what was signed: the canonical bytes the digest
//! covered, of the root element if the root is signed, else of the one
//! signed element. A caller reads only that, so content outside a
//! signature (a wrapped assertion, a comment splitting a value) is never
//! read.

#![deny(unsafe_code)]

mod ffi;
mod keys;
mod tree;

use libxml::parser::{Parser, ParserOptions};

pub use keys::CertificateKey;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the document is not well-formed XML")]
    Parse,
    #[error("the document has a DTD")]
    Doctype,
    #[error("the document has no signature")]
    Unsigned,
    #[error("an ID attribute is not an NCName, or is already another element's ID")]
    BadId,
    #[error("two elements have the same ID")]
    DuplicateId,
    #[error("a signature or digest algorithm is not allowed")]
    Algorithm,
    #[error("a signature's reference is not to the element that holds it: {0}")]
    Reference(&'static str),
    #[error("a signature does not verify with any of the IdP's certificates")]
    Invalid,
    #[error("signatures cover more than one element besides the root")]
    SeveralSigned,
    #[error("the certificate cannot be loaded")]
    Certificate,
    #[error("libxmlsec1: {0}")]
    Library(&'static str),
}

/// The SignatureMethod and DigestMethod URIs a verification accepts.
#[derive(Debug, Clone, Copy)]
pub struct Algorithms<'a> {
    pub signature: &'a [&'a str],
    pub digest: &'a [&'a str],
}

/// What a verified document's signatures cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The canonical XML of the signed element (the root's, when the root
    /// is signed): the bytes its digest was computed over.
    pub xml: String,
    /// Whether that element is the document's root. A caller expecting a
    /// signed message (not a signed part of one) requires it: a signed
    /// message found inside an attacker's document is a wrapping shape.
    pub root: bool,
}

/// Verifies every signature in `xml` with `keys` (any one of them may
/// have made each signature) and returns what they cover. `algorithms`
/// `None` accepts every algorithm libxmlsec1 knows (an operator's
/// insecure switch, e.g. for SHA-1).
pub fn verify(xml: &str, keys: &[CertificateKey], algorithms: Option<Algorithms<'_>>) -> Result<Signed, Error> {
    // Strict: libxml's default recovers from malformed input (and so
    // would verify a document other parsers read differently); never the
    // network.
    let options = ParserOptions {
        recover: false,
        no_net: true,
        no_def_dtd: true,
        ..ParserOptions::default()
    };
    let document = Parser::default()
        .parse_string_with_options(xml, options)
        .map_err(|_| Error::Parse)?;
    // A DTD can declare IDs and entities the checks below do not expect
    // (an ID hijacking the signed one, text the caller's parser reads
    // otherwise); SAML has none, so none is read at all.
    if ffi::has_doctype(&document) {
        return Err(Error::Doctype);
    }
    let root = document.get_root_element().ok_or(Error::Parse)?;
    tree::register_ids(&document, &root)?;
    let signatures = tree::signatures(&root);
    if signatures.is_empty() {
        return Err(Error::Unsigned);
    }
    let mut root_signed = None;
    let mut other_signed = None;
    for signature in &signatures {
        let parent = tree::check_shape(signature, algorithms)?;
        let references = keys::verify_with_any(signature, keys)?;
        let [reference] = references.as_slice() else {
            return Err(Error::Reference("not exactly one reference"));
        };
        if reference.uri.as_deref() != Some(format!("#{}", parent.id).as_str()) {
            return Err(Error::Reference("the URI is not the parent's ID"));
        }
        let slot = if parent.is_root {
            &mut root_signed
        } else {
            &mut other_signed
        };
        if slot.is_some() {
            return Err(Error::SeveralSigned);
        }
        *slot = Some(reference.canonical.clone());
    }
    // With the root signed, everything else in it is covered by that
    // signature; otherwise exactly one (non-root) element was signed.
    let root = root_signed.is_some();
    let xml = root_signed.or(other_signed).ok_or(Error::Unsigned)?;
    Ok(Signed { xml, root })
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod tests;
