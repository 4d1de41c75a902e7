//! Every check on a SAML Response, shown refusing its attack with the
//! exact error. Responses are real: signed by the pysaml2 IdP for a login
//! the provider started, then altered the way an attacker would. The
//! provider is doorward's own (`doorward::saml::SamlProvider`), with a
//! hand-set clock for the time checks.

use std::time::Duration;

use serde_json::{json, Value};

use crate::idp::Browser;
use crate::saml_peer::{sign_in_at_idp, users, Posted, SamlIdp};
use doorward::clock::Clock;
use doorward::saml::{IdpMetadata, SamlError, SamlProvider, SpUrls};

/// doorward's SP as far as these tests go: nothing listens there.
const SP_BASE: &str = "http://127.0.0.1:9";
const ACS: &str = "http://127.0.0.1:9/_doorward/saml/acs";
const ENTITY: &str = "http://127.0.0.1:9/_doorward/saml/metadata";

pub(crate) struct Lab {
    pub(crate) idp: SamlIdp,
    pub(crate) provider: SamlProvider,
    clock: Clock,
    _metadata: tempfile::NamedTempFile,
}

fn sp(entity: &str, acs: &str) -> Value {
    json!({"entity_id": entity, "acs_url": acs, "authn_requests_signed": false})
}

async fn metadata_of(idp: &SamlIdp) -> String {
    let url = url::Url::parse(&idp.metadata_url).expect("url");
    crate::idp::raw_request("GET", &url, &[], bytes::Bytes::new())
        .await
        .body
}

async fn provider_for(idp: &SamlIdp, options: &str, clock: Clock) -> (SamlProvider, tempfile::NamedTempFile) {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(metadata_of(idp).await.as_bytes())
        .expect("write metadata");
    let config: doorward::config::SamlProviderConfig = toml::from_str(&format!(
        "name = \"lab\"\nidp_metadata_file = \"{}\"\n{options}\n",
        file.path().display()
    ))
    .expect("provider config");
    let tls = doorward::tls::client_config(None).expect("tls");
    let http = doorward::idp_http::IdpHttp::new(tls, Duration::from_secs(2));
    let urls = SpUrls {
        base: SP_BASE,
        prefix: "/_doorward",
    };
    let provider = SamlProvider::new(&config, urls, http, clock).expect("provider");
    (provider, file)
}

impl Lab {
    pub(crate) async fn start(options: &str) -> Self {
        let idp = SamlIdp::start(
            &json!([
                sp(ENTITY, ACS),
                // Another service provider of the same IdP.
                sp("urn:test:other-sp", "http://127.0.0.1:9/other/acs"),
                // One that shares doorward's ACS but not its entity id.
                sp("urn:test:same-acs", ACS),
            ]),
            &users(),
            &[],
        );
        let clock = Clock::manual_from_now();
        let (provider, file) = provider_for(&idp, options, clock.clone()).await;
        Self {
            idp,
            provider,
            clock,
            _metadata: file,
        }
    }

    /// A login the provider starts, answered by the IdP: the post and the
    /// AuthnRequest ID it answers.
    pub(crate) async fn response(&self, user: &str) -> (Posted, String) {
        let (redirect, id) = self
            .provider
            .authn_request_redirect("relay-0123456789", &Default::default())
            .expect("request");
        let url = url::Url::parse(&redirect).expect("url");
        let posted = sign_in_at_idp(&mut Browser::default(), &url, user).await;
        (posted, id)
    }

    pub(crate) fn check(
        &self,
        posted: &Posted,
        expected: Option<&str>,
    ) -> Result<doorward::saml::SamlLogin, SamlError> {
        self.provider.validate_response(&posted.response, expected)
    }
}

pub(crate) fn refused(result: Result<doorward::saml::SamlLogin, SamlError>) -> SamlError {
    match result {
        Ok(login) => panic!("accepted: {:?}", login.result.subject),
        Err(e) => e,
    }
}

/// The assertion element (with its prefix) of a Response.
pub(crate) fn assertion_of(xml: &str) -> (usize, usize) {
    let start = xml
        .find(":Assertion ")
        .map(|i| xml[..i].rfind('<').expect("<"))
        .expect("an assertion");
    let close_tag = xml[start..].find(":Assertion>").expect("end") + start;
    let end = close_tag + ":Assertion>".len();
    (start, end)
}

/// An unsigned copy of the assertion, saying `evil` is the user.
fn forged_assertion(xml: &str) -> String {
    let (start, end) = assertion_of(xml);
    let original = &xml[start..end];
    let sig_start = original
        .find("<ns2:Signature")
        .or_else(|| original.find("<ds:Signature"));
    let unsigned = match sig_start {
        Some(s) => {
            let sig_end = original
                .find("Signature>")
                .map(|e| e + "Signature>".len())
                .expect("sig end");
            let after = original[sig_end..]
                .find("Signature>")
                .map(|e| sig_end + e + "Signature>".len());
            format!("{}{}", &original[..s], &original[after.unwrap_or(sig_end)..])
        }
        None => original.to_string(),
    };
    unsigned
        .replace("alice@example.com", "evil@example.com")
        .replacen(" ID=\"", " ID=\"forged", 1)
}

#[tokio::test]
async fn a_real_response_passes_and_becomes_claims() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    let login = lab.check(&posted, Some(&id)).expect("valid");
    assert_eq!(login.result.subject, "alice@example.com");
    assert_eq!(login.result.merged["memberOf"], json!(["engineers", "staff"]));
    assert_eq!(login.result.merged["email"], "alice@example.com");
    assert_eq!(login.result.issuer, lab.idp.entity_id);
    assert!(login.result.idp_session.is_some(), "SessionIndex kept for logout");
    assert!(login.result.idp_session_end.is_some(), "SessionNotOnOrAfter kept");
    assert!(login.replay_until > lab.clock.now());
}

#[tokio::test]
async fn altered_content_under_the_original_signature_is_refused() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    let xml = posted.xml();
    let altered = xml.replacen(">staff<", ">admins<", 1);
    assert_ne!(altered, xml);
    assert!(matches!(
        refused(lab.check(&posted.with_xml(&altered), Some(&id))),
        SamlError::BadSignature(_)
    ));
    // The NameID changed.
    let altered = xml.replacen(">alice@example.com<", ">admin@example.com<", 1);
    assert!(matches!(
        refused(lab.check(&posted.with_xml(&altered), Some(&id))),
        SamlError::BadSignature(_)
    ));
}

#[tokio::test]
async fn signature_wrapping_shapes_are_refused() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    let xml = posted.xml();
    let (start, end) = assertion_of(&xml);
    let forged = forged_assertion(&xml);
    let signed = &xml[start..end];
    let before_signed = format!("{}{forged}{}", &xml[..start], &xml[start..]);
    let after_signed = format!("{}{forged}{}", &xml[..end], &xml[end..]);
    // XSW: the signed assertion hidden in Extensions, the forged one in its place.
    let status = xml.find("<ns0:Status").expect("status");
    let in_extensions = format!(
        "{}<ns0:Extensions>{signed}</ns0:Extensions>{}{forged}{}",
        &xml[..status],
        &xml[status..start],
        &xml[end..]
    );
    // XSW: the forged assertion inside the signed one's Signature/Object.
    let sig_value_end = signed.find("</ns2:SignatureValue>").expect("signature value") + "</ns2:SignatureValue>".len();
    let in_object = format!(
        "{}{}<ns2:Object>{forged}</ns2:Object>{}{}",
        &xml[..start],
        &signed[..sig_value_end],
        &signed[sig_value_end..],
        &xml[end..]
    );
    for (shape, xml) in [
        ("forged before signed", before_signed),
        ("forged after signed", after_signed),
        ("signed moved to Extensions", in_extensions),
        ("forged inside Signature/Object", in_object),
    ] {
        assert_eq!(
            refused(lab.check(&posted.with_xml(&xml), Some(&id))),
            SamlError::AssertionCount(2),
            "{shape}"
        );
    }
    // Only the forged assertion, carrying the original's Signature (which
    // references an ID no longer there): the signature does not verify.
    let sig = signed.find("<ns2:Signature").expect("sig");
    let sig_end = signed.rfind("</ns2:Signature>").expect("sig end") + "</ns2:Signature>".len();
    let forged_with_sig = forged.replacen("<ns1:Subject>", &format!("{}<ns1:Subject>", &signed[sig..sig_end]), 1);
    let replaced = format!("{}{forged_with_sig}{}", &xml[..start], &xml[end..]);
    assert!(matches!(
        refused(lab.check(&posted.with_xml(&replaced), Some(&id))),
        SamlError::BadSignature(_)
    ));
}

#[tokio::test]
async fn time_bounds_are_enforced_with_skew() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    lab.clock.advance(3600);
    assert_eq!(refused(lab.check(&posted, Some(&id))), SamlError::Expired);
    lab.clock.advance(-7200);
    assert_eq!(refused(lab.check(&posted, Some(&id))), SamlError::NotYetValid);
    lab.clock.advance(3600 + 30);
    assert!(
        lab.check(&posted, Some(&id)).is_ok(),
        "30 s later is within the 60 s skew"
    );
}

#[tokio::test]
async fn responses_for_another_sp_or_place_are_refused() {
    let lab = Lab::start("").await;
    // Audience: an SP that shares doorward's ACS but not its entity id.
    let for_same_acs = lab.idp.unsolicited("alice", "urn:test:same-acs", None).await;
    assert_eq!(refused(lab.check(&for_same_acs, None)), SamlError::WrongAudience);
    // Destination: a response meant for another SP's ACS.
    let for_other = lab.idp.unsolicited("alice", "urn:test:other-sp", None).await;
    assert_eq!(
        refused(lab.check(&for_other, None)),
        SamlError::WrongDestination("http://127.0.0.1:9/other/acs".into())
    );
    // Recipient: the (unsigned) envelope pointed at us, the signed
    // SubjectConfirmation still names the other SP's ACS.
    let redirected = for_other.xml().replacen(
        "Destination=\"http://127.0.0.1:9/other/acs\"",
        &format!("Destination=\"{ACS}\""),
        1,
    );
    assert_eq!(
        refused(lab.check(&for_other.with_xml(&redirected), None)),
        SamlError::WrongRecipient("http://127.0.0.1:9/other/acs".into())
    );
    // Destination altered on our own response.
    let (posted, id) = lab.response("alice").await;
    let elsewhere = posted
        .xml()
        .replacen(&format!("Destination=\"{ACS}\""), "Destination=\"https://evil/\"", 1);
    assert_eq!(
        refused(lab.check(&posted.with_xml(&elsewhere), Some(&id))),
        SamlError::WrongDestination("https://evil/".into())
    );
}

#[tokio::test]
async fn unsigned_and_foreign_key_responses_are_refused() {
    let lab = Lab::start("").await;
    lab.idp.set_options(&json!({"sign": "none"})).await;
    let (posted, id) = lab.response("alice").await;
    assert_eq!(refused(lab.check(&posted, Some(&id))), SamlError::Unsigned);

    // Another IdP claiming the same entity id, with its own key.
    let impostor = SamlIdp::start(
        &json!([sp(ENTITY, ACS)]),
        &users(),
        &[("SAML_ENTITY_ID", &lab.idp.entity_id)],
    );
    let posted = impostor.unsolicited("alice", ENTITY, None).await;
    assert!(
        posted.xml().contains(&lab.idp.entity_id),
        "the impostor names the real IdP"
    );
    assert!(matches!(refused(lab.check(&posted, None)), SamlError::BadSignature(_)));
}

#[tokio::test]
async fn in_response_to_and_unsolicited_rules() {
    let lab = Lab::start("").await;
    let (posted, _id) = lab.response("alice").await;
    // Another login's request id: this response belongs to another browser.
    assert_eq!(
        refused(lab.check(&posted, Some("_another-login"))),
        SamlError::InResponseToMismatch
    );
    // No login in progress in this browser but the response answers one.
    assert_eq!(refused(lab.check(&posted, None)), SamlError::InResponseToMismatch);
    let unsolicited = lab.idp.unsolicited("alice", ENTITY, None).await;
    assert_eq!(refused(lab.check(&unsolicited, None)), SamlError::Unsolicited);
    let (allowing, _file) = provider_for(&lab.idp, "allow_unsolicited = true", lab.clock.clone()).await;
    assert!(allowing.validate_response(&unsolicited.response, None).is_ok());
}

#[tokio::test]
async fn structure_size_and_status_attacks_are_refused() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    let xml = posted.xml();
    let with_dtd = format!("<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{xml}");
    assert_eq!(
        refused(lab.check(&posted.with_xml(&with_dtd), Some(&id))),
        SamlError::Doctype
    );
    let huge = Posted {
        response: "A".repeat(300 << 10),
        ..posted.clone()
    };
    assert_eq!(refused(lab.check(&huge, Some(&id))), SamlError::TooLarge);
    let garbage = Posted {
        response: "not base64 !!".into(),
        ..posted.clone()
    };
    assert_eq!(refused(lab.check(&garbage, Some(&id))), SamlError::NotBase64);
    let failed = xml.replacen("status:Success", "status:Responder", 1);
    assert_eq!(
        refused(lab.check(&posted.with_xml(&failed), Some(&id))),
        SamlError::Status("urn:oasis:names:tc:SAML:2.0:status:Responder".into())
    );
}

#[tokio::test]
async fn metadata_without_signing_certificates_is_refused() {
    let idp = SamlIdp::start(&json!([sp(ENTITY, ACS)]), &users(), &[]);
    let metadata = metadata_of(&idp).await;
    let start = metadata.find("<ns0:KeyDescriptor").expect("a key descriptor");
    let end = metadata.rfind("</ns0:KeyDescriptor>").expect("end") + "</ns0:KeyDescriptor>".len();
    let stripped = format!("{}{}", &metadata[..start], &metadata[end..]);
    assert_eq!(IdpMetadata::parse(&stripped).err(), Some(SamlError::NoIdpCertificates));
    assert!(IdpMetadata::parse(&metadata).is_ok());
}

#[tokio::test]
async fn encrypted_assertions_without_an_sp_key_are_refused() {
    let lab = Lab::start("").await;
    let cert = lab.idp_signing_cert().await;
    lab.idp
        .add_sp(
            &json!({"entity_id": ENTITY, "acs_url": ACS, "authn_requests_signed": false,
                        "encryption_cert": cert}),
        )
        .await;
    lab.idp.set_options(&json!({"encrypt_assertion": true})).await;
    let (posted, id) = lab.response("alice").await;
    assert_eq!(refused(lab.check(&posted, Some(&id))), SamlError::EncryptedWithoutKey);
}

impl Lab {
    /// A lab whose SP has a key the IdP encrypts to (the certificate
    /// doorward's own metadata publishes); the files live as long as the
    /// second value.
    pub(crate) async fn with_sp_key() -> (Self, (tempfile::NamedTempFile, tempfile::NamedTempFile)) {
        let (key, cert) = sp_key_files();
        let lab = Lab::start(&format!(
            "sp_key = \"{}\"\nsp_certificate = \"{}\"",
            key.path().display(),
            cert.path().display()
        ))
        .await;
        let metadata = lab.provider.sp_metadata();
        assert!(metadata.contains("<md:KeyDescriptor use=\"encryption\">"), "{metadata}");
        lab.idp.add_sp_xml(&metadata).await;
        (lab, (key, cert))
    }
}

/// An RSA key and self-signed certificate for doorward's SP, as PEM files.
fn sp_key_files() -> (tempfile::NamedTempFile, tempfile::NamedTempFile) {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    use std::io::Write;
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    let mut name = x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "doorward-sp").expect("cn");
    let name = name.build();
    let mut cert = x509::X509::builder().expect("builder");
    cert.set_version(2).expect("version");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(&name).expect("issuer");
    cert.set_pubkey(&key).expect("pubkey");
    cert.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("nb");
    cert.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("na");
    cert.sign(&key, MessageDigest::sha256()).expect("sign");
    let mut key_file = tempfile::NamedTempFile::new().expect("key file");
    key_file
        .write_all(&key.private_key_to_pem_pkcs8().expect("pem"))
        .expect("write");
    let mut cert_file = tempfile::NamedTempFile::new().expect("cert file");
    cert_file
        .write_all(&cert.build().to_pem().expect("pem"))
        .expect("write");
    (key_file, cert_file)
}

/// With an SP key, the real IdP encrypts to the certificate doorward's own
/// metadata publishes: AES-GCM opens whatever is signed; AES-CBC only under
/// a signed Response; PKCS#1 v1.5 key transport never; and encryption
/// vouches for nothing, so an unsigned encrypted assertion is refused.
#[tokio::test]
async fn encrypted_assertions_open_with_the_sp_key_under_the_idps_signature() {
    let (lab, _files) = Lab::with_sp_key().await;
    let cases: [(&str, &str, &str, Option<SamlError>); 6] = [
        ("aes256-gcm", "rsa-oaep-mgf1p", "assertion", None),
        ("aes128-gcm", "rsa-oaep-mgf1p", "response", None),
        ("aes256-cbc", "rsa-oaep-mgf1p", "both", None),
        (
            "aes256-cbc",
            "rsa-oaep-mgf1p",
            "assertion",
            Some(SamlError::Decryption(
                "http://www.w3.org/2001/04/xmlenc#aes256-cbc without a signed Response: CBC is accepted only under \
             the IdP's signature (sign the Response, or encrypt with AES-GCM)"
                    .into(),
            )),
        ),
        (
            "aes256-gcm",
            "rsa-1_5",
            "both",
            Some(SamlError::Decryption(
                "RSA PKCS#1 v1.5 key transport is refused (use RSA-OAEP)".into(),
            )),
        ),
        ("aes256-gcm", "rsa-oaep-mgf1p", "none", Some(SamlError::Unsigned)),
    ];
    for (content, transport, sign, want) in cases {
        lab.idp
            .set_options(&json!({"encrypt_assertion": true, "encryption_alg": content,
                                 "key_transport_alg": transport, "sign": sign}))
            .await;
        let (posted, id) = lab.response("alice").await;
        assert!(posted.response.len() > 100, "a response was posted");
        let result = lab.check(&posted, Some(&id));
        match want {
            None => {
                let login = result.unwrap_or_else(|e| panic!("{content}/{transport}/{sign}: refused: {e}"));
                assert_eq!(login.result.subject, "alice@example.com", "{content}/{sign}");
            }
            Some(error) => assert_eq!(refused(result), error, "{content}/{transport}/{sign}"),
        }
    }
}

impl Lab {
    /// Any valid certificate will do as an SP encryption cert here.
    async fn idp_signing_cert(&self) -> String {
        let metadata = metadata_of(&self.idp).await;
        let start = metadata.find("X509Certificate>").expect("cert") + "X509Certificate>".len();
        let end = metadata[start..].find('<').expect("end") + start;
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            metadata[start..end].trim()
        )
    }
}
