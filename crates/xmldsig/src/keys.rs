//! A certificate's key, loaded into libxmlsec1 when the metadata is read
//! and then reused: a small pool of loaded copies, one per verification
//! running at the same time (libxmlsec1 does not document a key as safe to
//! use from two threads at once, so each copy has one user at a time).

use std::sync::{Mutex, Once};

use crate::ffi::{self, LoadedKey, VerifiedReference};
use crate::Error;

/// Most idle copies kept per certificate; more concurrent verifications
/// load (and then drop) their own.
const MAX_IDLE: usize = 16;

/// One IdP signing certificate, loaded once; cheap to verify with from any
/// thread. Built beside the IdP's metadata and dropped with it.
pub struct CertificateKey {
    der: Vec<u8>,
    idle: Mutex<Vec<LoadedKey>>,
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

impl CertificateKey {
    /// Loads a DER certificate's key (so a certificate libxmlsec1 cannot
    /// read is refused with the metadata, not at the first login).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        init(der);
        let key = LoadedKey::from_certificate_der(der)?;
        Ok(Self {
            der: der.to_vec(),
            idle: Mutex::new(vec![key]),
        })
    }

    fn take(&self) -> Result<LoadedKey, Error> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(key) => Ok(key),
            None => LoadedKey::from_certificate_der(&self.der),
        }
    }

    fn give_back(&self, key: LoadedKey) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(key);
            }
        }
    }

    /// How many loaded copies wait for a verification (for tests).
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// libxmlsec1 is initialised once per process, by samael (which doorward
/// also links, and whose own initialisation would otherwise reset the
/// global lists under a second one): its certificate check runs its
/// initialiser first. The check itself fails (no signature in `<a/>`);
/// only the initialisation is wanted.
fn init(der: &[u8]) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
        let _ = Crypto::verify_signed_xml("<a/>", &CertificateDer::from(der.to_vec()), None);
    });
}

/// Verifies one signature node with the first key that verifies it.
pub(crate) fn verify_with_any(
    signature: &libxml::tree::Node,
    keys: &[CertificateKey],
) -> Result<Vec<VerifiedReference>, Error> {
    let (mut invalid, mut error) = (false, None);
    for certificate in keys {
        let mut key = certificate.take()?;
        let verified = ffi::verify(signature.node_ptr(), &mut key);
        certificate.give_back(key);
        match verified {
            Ok(Some(references)) => return Ok(references),
            Ok(None) => invalid = true,
            // libxmlsec1 fails, rather than says no, with a key of another
            // type (an EC key for an RSA signature): the next key may be
            // the one. Only success from some key is ever accepted.
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    Err(match error {
        Some(e) if !invalid => e,
        _ => Error::Invalid,
    })
}
