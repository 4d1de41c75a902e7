//! The SAML Response intake: what arrives at the ACS as a form field goes
//! through base64, the DTD and assertion-count scans, samael's XML parser
//! and libxmlsec1's signature check. Nothing there may panic, and since
//! fuzzed bytes cannot carry a signature by the IdP's key, nothing the
//! fuzzer makes may ever be accepted as a login.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

use crate::clock::Clock;
use crate::saml::{IdpMetadata, SamlProvider, SpUrls};

/// The IdP's entity id in the fuzzing provider's metadata.
const IDP_ENTITY: &str = "https://idp.fuzz.test/metadata";

/// A self-signed certificate, made once, for the metadata's signing key.
fn certificate() -> Option<String> {
    let rsa = Rsa::generate(2048).ok()?;
    let key = PKey::from_rsa(rsa).ok()?;
    let mut name = X509NameBuilder::new().ok()?;
    name.append_entry_by_text("CN", "idp.fuzz.test").ok()?;
    let name = name.build();
    let mut builder = X509::builder().ok()?;
    builder.set_version(2).ok()?;
    builder.set_subject_name(&name).ok()?;
    builder.set_issuer_name(&name).ok()?;
    builder.set_pubkey(&key).ok()?;
    builder.set_not_before(Asn1Time::days_from_now(0).ok()?.as_ref()).ok()?;
    builder
        .set_not_after(Asn1Time::days_from_now(365).ok()?.as_ref())
        .ok()?;
    builder.sign(&key, MessageDigest::sha256()).ok()?;
    let der = builder.build().to_der().ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(der))
}

/// A provider that accepts unsolicited responses (the widest intake), with
/// metadata already loaded; the URL is never fetched.
fn provider() -> &'static SamlProvider {
    static PROVIDER: OnceLock<SamlProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let certificate = certificate().expect("a test certificate");
        let metadata = format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ENTITY}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.fuzz.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        );
        let config: crate::config::SamlProviderConfig = toml::from_str(
            "name = \"fuzz\"\nidp_metadata_url = \"https://idp.fuzz.test/metadata\"\nallow_unsolicited = true\n",
        )
        .expect("provider config");
        let tls = crate::tls::client_config(None).expect("tls");
        let http = crate::idp_http::IdpHttp::new(tls, Duration::from_secs(1));
        let urls = SpUrls {
            base: "https://sp.fuzz.test",
            prefix: "/_doorward",
        };
        let provider = SamlProvider::new(&config, urls, http, Clock::system()).expect("provider");
        provider.set_metadata(IdpMetadata::parse(&metadata).expect("metadata"));
        provider
    })
}

/// Any bytes, as the raw form field and base64-encoded as a browser would
/// post an XML document: refused with an error, never a panic or a login.
pub fn saml_response(data: &[u8]) {
    let provider = provider();
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    for field in [String::from_utf8_lossy(data).into_owned(), encoded] {
        let _ = SamlProvider::peek_issuer(&field, 1 << 20);
        for expected in [None, Some("_request-1")] {
            if let Ok(login) = provider.validate_response(&field, expected) {
                panic!("fuzzed bytes were accepted as a login: {:?}", login.assertion_id);
            }
        }
    }
}
