//! XML signatures on SAML messages (the ACS's Responses, posted
//! LogoutRequests): every signature verified with the IdP's certificates,
//! loaded into libxmlsec1 once per metadata (`IdpMetadata::certificates`),
//! and only the canonical bytes a signature covers handed back to be
//! read. The reference, wrapping and algorithm checks are
//! `doorward-xmldsig`'s (see its crate docs); the allowed algorithms are
//! doorward's choice, here.

use doorward_xmldsig::{verify, Algorithms, Signed};

use super::{IdpMetadata, SamlError, SamlProvider};

/// SHA-2 only, RSA or ECDSA: what SAML IdPs sign with today.
const SIGNATURE_METHODS: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const DIGEST_METHODS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

impl SamlProvider {
    /// Signature algorithms accepted on XML signatures; with the SHA-1
    /// switch on, no restriction (libxmlsec1's own list).
    fn allowed_algorithms(&self) -> Option<Algorithms<'static>> {
        (!self.allow_sha1).then_some(Algorithms {
            signature: &SIGNATURE_METHODS,
            digest: &DIGEST_METHODS,
        })
    }

    /// The signed part of `xml` (the canonical form of the root element
    /// when the root is signed, else of the one signed element, and which
    /// of the two), every signature verified with the IdP's certificates
    /// and the allowed algorithms.
    pub(super) fn verified(&self, xml: &str, idp: &IdpMetadata) -> Result<Signed, SamlError> {
        verify(xml, &idp.certificates, self.allowed_algorithms()).map_err(|e| SamlError::BadSignature(e.to_string()))
    }
}
