//! The ACS against the XML-DSig tricks that target what it reads after
//! the signature check (doorward-xmldsig's own tests cover the signature
//! side): real pysaml2 responses, per signing mode, altered by someone who
//! holds them. The ACS reads only the canonical bytes the IdP signed, and
//! a signed Response only when it is the document itself.

use serde_json::json;

use crate::saml_attacks::{assertion_of, refused, Lab};
use doorward::saml::SamlError;

/// The posted document without its XML declaration (to nest it).
fn body(xml: &str) -> &str {
    match xml.find("?>") {
        Some(end) if xml.starts_with("<?xml") => &xml[end + 2..],
        _ => xml,
    }
}

/// The document with `extra` added right after the Response's Status.
fn after_status(xml: &str, extra: &str) -> String {
    let end = xml.find("</ns0:Status>").expect("a Status") + "</ns0:Status>".len();
    format!("{}{extra}{}", &xml[..end], &xml[end..])
}

/// An unsigned Response of the attacker's, for the same login, with the
/// genuine one nested inside it.
fn wrapped(xml: &str, expected: &str) -> String {
    let root_end = xml.find("<ns0:Status").expect("status");
    let start = xml.find("<ns0:Response").expect("root");
    let root = &xml[start..root_end];
    let outer_open = root[..root.find('>').expect("tag end") + 1].replace(" ID=\"", " ID=\"wrapper");
    assert!(outer_open.contains(expected), "{outer_open}");
    format!(
        "{outer_open}<ns0:Status><ns0:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></ns0:Status>\
         <x:Wrapper xmlns:x=\"urn:x\">{}</x:Wrapper></ns0:Response>",
        body(xml)
    )
}

#[tokio::test]
async fn a_comment_in_a_signed_name_id_never_shortens_it() {
    let lab = Lab::start("").await;
    lab.idp
        .set_user(
            "mallory",
            &json!({"name_id": "alice@example.com.evil.com", "name_id_format": "email",
                     "attributes": {"mail": ["alice@example.com.evil.com"]}}),
        )
        .await;
    for sign in ["assertion", "response", "both"] {
        lab.idp.set_options(&json!({"sign": sign})).await;
        let (posted, id) = lab.response("mallory").await;
        let xml = posted.xml();
        let commented = xml.replace("alice@example.com.evil.com<", "alice@example.com<!---->.evil.com<");
        assert_eq!(commented.matches("<!---->").count(), 2, "NameID and mail: {sign}");
        // The comment is not signed (bare `#ID` references drop comments),
        // so the signature holds; what is read is the canonical form,
        // without it: the whole value.
        let login = lab
            .check(&posted.with_xml(&commented), Some(&id))
            .unwrap_or_else(|e| panic!("{sign}: refused: {e}"));
        assert_eq!(login.result.subject, "alice@example.com.evil.com", "{sign}");
        assert_eq!(login.result.merged["mail"], "alice@example.com.evil.com", "{sign}");
    }
}

#[tokio::test]
async fn a_signed_response_inside_the_attackers_is_refused() {
    let lab = Lab::start("").await;
    for (sign, want) in [
        (
            "response",
            SamlError::Malformed("the signed Response is not the document's root".into()),
        ),
        (
            "both",
            SamlError::BadSignature("signatures cover more than one element besides the root".into()),
        ),
    ] {
        lab.idp.set_options(&json!({"sign": sign})).await;
        let (posted, id) = lab.response("alice").await;
        let xml = wrapped(&posted.xml(), &id);
        assert_eq!(refused(lab.check(&posted.with_xml(&xml), Some(&id))), want, "{sign}");
    }
    // Only the Assertion signed: where it sits does not matter, since
    // only it is read (and the envelope's own checks still apply).
    lab.idp.set_options(&json!({"sign": "assertion"})).await;
    let (posted, id) = lab.response("alice").await;
    let xml = wrapped(&posted.xml(), &id);
    let login = lab
        .check(&posted.with_xml(&xml), Some(&id))
        .expect("the signed assertion");
    assert_eq!(login.result.subject, "alice@example.com");
}

#[tokio::test]
async fn ids_colliding_with_the_signed_assertions_are_refused() {
    let lab = Lab::start("").await;
    let (posted, id) = lab.response("alice").await;
    let xml = posted.xml();
    let (start, end) = assertion_of(&xml);
    let assertion = &xml[start..end];
    let at = assertion.find(" ID=\"").expect("an ID") + " ID=\"".len();
    let assertion_id = &assertion[at..at + assertion[at..].find('"').expect("end")];
    for (attribute, error) in [
        (
            "xml:id",
            "an ID attribute is not an NCName, or is already another element's ID",
        ),
        ("ID", "two elements have the same ID"),
        ("x:ID", "two elements have the same ID"),
    ] {
        let colliding = after_status(
            &xml,
            &format!("<x:E xmlns:x=\"urn:x\" {attribute}=\"{assertion_id}\"/>"),
        );
        assert_eq!(
            refused(lab.check(&posted.with_xml(&colliding), Some(&id))),
            SamlError::BadSignature(error.into()),
            "{attribute}"
        );
    }
    // `Id` is no ID: the reference still means the signed assertion.
    let not_an_id = after_status(&xml, &format!("<x:E xmlns:x=\"urn:x\" Id=\"{assertion_id}\"/>"));
    let login = lab.check(&posted.with_xml(&not_an_id), Some(&id)).expect("valid");
    assert_eq!(login.result.subject, "alice@example.com");
}

/// Outside the ciphertext only the Response's signature can stand, and a
/// signed Response is what lets CBC (and an unsigned assertion inside) in:
/// a look-alike Signature element must not pass for one.
#[tokio::test]
async fn a_look_alike_signature_does_not_make_an_encrypted_response_signed() {
    let (lab, _files) = Lab::with_sp_key().await;
    for content in ["aes256-cbc", "aes256-gcm"] {
        lab.idp
            .set_options(&json!({"encrypt_assertion": true, "encryption_alg": content,
                                 "key_transport_alg": "rsa-oaep-mgf1p", "sign": "assertion"}))
            .await;
        let (posted, id) = lab.response("alice").await;
        let xml = posted.xml();
        // (Inside an element the envelope's parser skips: a bare one is
        // refused earlier, as a Response that does not parse.)
        for look_alike in [
            "<x:W xmlns:x=\"urn:x\"><x:Signature/></x:W>",
            "<x:W xmlns:x=\"urn:x\"><Signature xmlns=\"urn:x\"><SignedInfo/></Signature></x:W>",
        ] {
            let faked = after_status(&xml, look_alike);
            assert_eq!(
                refused(lab.check(&posted.with_xml(&faked), Some(&id))),
                SamlError::BadSignature("the document has no signature".into()),
                "{content}: {look_alike}"
            );
        }
    }
}
