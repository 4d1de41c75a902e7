//! The verifier against documents signed by the xmlsec1 command line
//! (tests/fixtures/make.sh), and the same documents altered the way an
//! attacker would.

use super::*;

const BOTH: &str = include_str!("../tests/fixtures/both-signed.xml");
const ASSERTION: &str = include_str!("../tests/fixtures/assertion-signed.xml");
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const STRICT: Algorithms<'static> = Algorithms {
    signature: &[RSA_SHA256],
    digest: &[SHA256],
};

fn idp() -> CertificateKey {
    CertificateKey::from_der(include_bytes!("../tests/fixtures/idp.der")).expect("the IdP certificate loads")
}

fn stranger() -> CertificateKey {
    CertificateKey::from_der(include_bytes!("../tests/fixtures/stranger.der")).expect("loads")
}

#[test]
fn a_response_signed_twice_yields_the_canonical_response() {
    let signed = verify(BOTH, &[idp()], Some(STRICT)).expect("verifies");
    assert!(signed.xml.starts_with("<samlp:Response "), "{}", signed.xml);
    assert!(signed.xml.contains("alice@example.com"));
    // The Response's own signature is not part of what it signs.
    assert!(!signed.xml.contains("URI=\"#r1\""));
    assert!(signed.xml.contains("URI=\"#a1\""));
}

#[test]
fn a_signed_assertion_alone_yields_the_assertion() {
    let signed = verify(ASSERTION, &[idp()], Some(STRICT)).expect("verifies");
    assert!(signed.xml.starts_with("<saml:Assertion "), "{}", signed.xml);
}

#[test]
fn any_of_the_certificates_may_have_signed_and_keys_are_reused() {
    let keys = [stranger(), idp()];
    for _ in 0..3 {
        verify(BOTH, &keys, Some(STRICT)).expect("verifies with the second key");
    }
    assert_eq!(keys[1].idle(), 1, "one loaded copy, reused");
    assert_eq!(verify(BOTH, &[stranger()], Some(STRICT)), Err(Error::Invalid));
}

#[test]
fn altered_content_does_not_verify() {
    let altered = BOTH.replace(">alice@example.com<", ">admin@example.com<");
    assert_eq!(verify(&altered, &[idp()], Some(STRICT)), Err(Error::Invalid));
    let altered = BOTH.replace("status:Success", "status:Requester");
    assert_eq!(verify(&altered, &[idp()], Some(STRICT)), Err(Error::Invalid));
}

#[test]
fn algorithms_outside_the_list_are_refused_before_any_check() {
    let only_384 = Algorithms {
        signature: &["http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"],
        digest: &[SHA256],
    };
    assert_eq!(verify(BOTH, &[idp()], Some(only_384)), Err(Error::Algorithm));
    let no_digest = Algorithms {
        signature: &[RSA_SHA256],
        digest: &[],
    };
    assert_eq!(verify(BOTH, &[idp()], Some(no_digest)), Err(Error::Algorithm));
    assert!(verify(BOTH, &[idp()], None).is_ok());
}

#[test]
fn references_must_point_at_the_signatures_parent() {
    // The assertion's signature moved under the Response: it now sits in
    // an element it does not reference.
    let start = ASSERTION.find("<ds:Signature").expect("sig");
    let end = ASSERTION.find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
    let signature = &ASSERTION[start..end];
    let unsigned_assertion = format!("{}{}", &ASSERTION[..start], &ASSERTION[end..]);
    let moved = format!("<r:R xmlns:r=\"urn:r\" ID=\"x\">{signature}{unsigned_assertion}</r:R>");
    assert_eq!(
        verify(&moved, &[idp()], Some(STRICT)),
        Err(Error::Reference("the URI is not the parent's ID"))
    );
    let xpath = BOTH.replace(
        "xml-exc-c14n#\"/></ds:Transforms>",
        "xml-exc-c14n#\"/><ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/></ds:Transforms>",
    );
    assert_eq!(
        verify(&xpath, &[idp()], Some(STRICT)),
        Err(Error::Reference("a transform other than enveloped-signature or c14n"))
    );
}

#[test]
fn duplicate_and_malformed_ids_are_refused() {
    let start = BOTH.find("<saml:Assertion").expect("assertion");
    let duplicate = format!("{}<x ID=\"a1\"/>{}", &BOTH[..start], &BOTH[start..]);
    assert_eq!(verify(&duplicate, &[idp()], Some(STRICT)), Err(Error::DuplicateId));
    let bad = BOTH.replace("ID=\"r1\"", "ID=\"1 r\"");
    assert_eq!(verify(&bad, &[idp()], Some(STRICT)), Err(Error::BadId));
}

#[test]
fn unsigned_or_broken_documents_are_refused() {
    assert_eq!(verify("<a ID=\"x\"/>", &[idp()], Some(STRICT)), Err(Error::Unsigned));
    assert_eq!(verify("<a><b></a>", &[idp()], Some(STRICT)), Err(Error::Parse));
    assert_eq!(
        CertificateKey::from_der(b"not a certificate").err(),
        Some(Error::Certificate)
    );
}

#[test]
fn keys_are_shared_across_threads_one_user_at_a_time() {
    let key = std::sync::Arc::new(idp());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    verify(BOTH, std::slice::from_ref(&*key), Some(STRICT)).expect("verifies");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    assert!((1..=4).contains(&key.idle()));
}
