//! The verifier attacked by someone holding one genuinely signed Assertion
//! (or Response) who can edit everything around it: signature wrapping
//! (XSW1–8 of Somorovsky et al.), colliding IDs, comments and entities in
//! signed values, namespace tricks, references other than `#parent-ID`,
//! a key of their own, and many threads at once. Each either refuses with
//! the exact error or yields exactly the canonical bytes the IdP signed.

use super::*;

const BOTH: &str = include_str!("../tests/fixtures/both-signed.xml");
const ASSERTION: &str = include_str!("../tests/fixtures/assertion-signed.xml");
const WITH_COMMENTS: &str = include_str!("../tests/fixtures/with-comments.xml");
const STRANGER_KEYINFO: &str = include_str!("../tests/fixtures/stranger-keyinfo.xml");
const HMAC: &str = include_str!("../tests/fixtures/hmac.xml");
const STRICT: Algorithms<'static> = Algorithms {
    signature: &["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"],
    digest: &["http://www.w3.org/2001/04/xmlenc#sha256"],
};
const SAML: &str = "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"";
/// An unsigned assertion the attacker wrote.
const EVIL: &str = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"evil\">\
<saml:Subject><saml:NameID>evil@example.com</saml:NameID></saml:Subject></saml:Assertion>";

fn idp() -> CertificateKey {
    CertificateKey::from_der(include_bytes!("../tests/fixtures/idp.der")).expect("the IdP certificate loads")
}

fn stranger() -> CertificateKey {
    CertificateKey::from_der(include_bytes!("../tests/fixtures/stranger.der")).expect("loads")
}

fn check(xml: &str) -> Result<String, Error> {
    verify(xml, &[idp()], Some(STRICT)).map(|signed| signed.xml)
}

/// The canonical signed Assertion, as the IdP's signature covers it.
fn genuine() -> String {
    check(ASSERTION).expect("the genuine assertion verifies")
}

/// An unsigned Response (the attacker's) around `inner`.
fn response(inner: &str) -> String {
    format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"r9\">{inner}</samlp:Response>")
}

/// The signed assertion's `<ds:Signature>` and the assertion without it.
fn split_signature(assertion: &str) -> (&str, String) {
    let start = assertion.find("<ds:Signature").expect("a signature");
    let end = assertion.find("</ds:Signature>").expect("its end") + "</ds:Signature>".len();
    (
        &assertion[start..end],
        format!("{}{}", &assertion[..start], &assertion[end..]),
    )
}

#[test]
fn wrapped_or_moved_assertions_yield_only_the_signed_one() {
    let genuine = genuine();
    let in_advice = EVIL.replace(
        "</saml:Subject>",
        &format!("</saml:Subject><saml:Advice>{ASSERTION}</saml:Advice>"),
    );
    // Wherever the signed assertion is hidden, what comes back is it
    // (the caller reads nothing else), never the attacker's.
    for (shape, xml) in [
        ("evil first", response(&format!("{EVIL}{ASSERTION}"))),
        ("evil last", response(&format!("{ASSERTION}{EVIL}"))),
        (
            "signed in Extensions",
            response(&format!("<samlp:Extensions>{ASSERTION}</samlp:Extensions>{EVIL}")),
        ),
        ("signed in the evil one's Advice", response(&in_advice)),
        (
            "signed in an unknown wrapper",
            response(&format!("<x:W xmlns:x=\"urn:x\">{ASSERTION}</x:W>{EVIL}")),
        ),
    ] {
        assert_eq!(check(&xml).as_ref(), Ok(&genuine), "{shape}");
    }
    // The evil assertion inside the signed one: its digest no longer holds.
    let inside = ASSERTION.replace("</saml:Subject>", &format!("</saml:Subject>{EVIL}"));
    assert_eq!(check(&response(&inside)), Err(Error::Invalid));
    // The genuine Signature moved into the evil assertion (its Reference
    // still names `#a1`, which is elsewhere or gone).
    let (signature, unsigned) = split_signature(ASSERTION);
    let evil_with_signature = EVIL.replace("<saml:Subject>", &format!("{signature}<saml:Subject>"));
    for xml in [
        response(&format!("{evil_with_signature}{unsigned}")),
        response(&evil_with_signature),
    ] {
        assert_eq!(check(&xml), Err(Error::Reference("the URI is not the parent's ID")));
    }
    // The same with the evil assertion taking the signed one's ID: its
    // content is not what was digested.
    let evil_as_a1 = evil_with_signature.replace("ID=\"evil\"", "ID=\"a1\"");
    assert_eq!(check(&response(&evil_as_a1)), Err(Error::Invalid));
    // And the caller is told the signed element is not the document.
    let nested = verify(&response(ASSERTION), &[idp()], Some(STRICT)).expect("verifies");
    assert!(!nested.root);
    assert!(verify(BOTH, &[idp()], Some(STRICT)).expect("verifies").root);
    // A second copy of the signed assertion is a duplicate ID.
    assert_eq!(
        check(&response(&format!("{ASSERTION}{ASSERTION}"))),
        Err(Error::DuplicateId)
    );
}

#[test]
fn a_signed_response_cannot_be_added_to_or_wrapped() {
    // Anything added inside a signed Response breaks its digest.
    let added = BOTH.replace("<samlp:Status>", &format!("{EVIL}<samlp:Status>"));
    assert_eq!(check(&added), Err(Error::Invalid));
    // Wrapped in the attacker's Response beside an evil assertion: the
    // signed Response and its signed Assertion are now two signed
    // non-root elements, and which one counts would be a guess.
    let body = BOTH.trim_start_matches("<?xml version=\"1.0\"?>").trim();
    let wrapped = response(&format!("<samlp:Extensions>{body}</samlp:Extensions>{EVIL}"));
    assert_eq!(check(&wrapped), Err(Error::SeveralSigned));
}

#[test]
fn attributes_colliding_with_the_signed_id_are_refused_or_not_ids() {
    let genuine = genuine();
    let evil_with = |attributes: &str| response(&format!("{}{ASSERTION}", EVIL.replace("ID=\"evil\"", attributes)));
    // xml:id is an ID to libxml2 whatever the DTD says: it collides.
    assert_eq!(check(&evil_with("xml:id=\"a1\"")), Err(Error::BadId));
    assert_eq!(
        check(&response(&format!(
            "{ASSERTION}{}",
            EVIL.replace("ID=\"evil\"", "xml:id=\"a1\"")
        ))),
        Err(Error::BadId)
    );
    // A namespaced `ID` is read as the element's ID: a duplicate.
    assert_eq!(
        check(&evil_with("xmlns:x=\"urn:x\" x:ID=\"a1\"")),
        Err(Error::DuplicateId)
    );
    // `Id` and `id` are not IDs here: `#a1` still means the signed element.
    for attributes in ["Id=\"a1\"", "id=\"a1\"", "xmlns:x=\"urn:x\" x:ID=\"zz\" ID=\"a1\""] {
        assert_eq!(check(&evil_with(attributes)).as_ref(), Ok(&genuine), "{attributes}");
    }
    // An ID written with a character reference is the same ID.
    assert_eq!(check(&ASSERTION.replace("ID=\"a1\"", "ID=\"&#97;1\"")), Ok(genuine));
}

#[test]
fn doctypes_are_refused_whatever_they_declare() {
    let entity = format!(
        "<!DOCTYPE saml:Assertion [<!ENTITY e \"example\">]>{}",
        ASSERTION.replace(">alice@example.com<", ">alice@&e;.com<")
    );
    let declared_id = format!(
        "<!DOCTYPE samlp:Response [<!ATTLIST saml:Evil Foo ID #IMPLIED>]>{}",
        response(&format!("<saml:Evil {SAML} Foo=\"a1\"/>{ASSERTION}"))
    );
    let empty = format!("<!DOCTYPE saml:Assertion>{ASSERTION}");
    let external = format!("<!DOCTYPE saml:Assertion SYSTEM \"http://127.0.0.1:9/x.dtd\">{ASSERTION}");
    for (what, xml) in [
        ("an entity", entity),
        ("a DTD-declared ID", declared_id),
        ("an empty DTD", empty),
        ("an external DTD", external),
    ] {
        assert_eq!(check(&xml), Err(Error::Doctype), "{what}");
    }
}

#[test]
fn a_comment_cannot_cut_a_signed_value_and_comes_back_removed() {
    let genuine = genuine();
    // Exclusive c14n without comments: the comment is not signed, so the
    // signature holds, and the bytes handed back hold the whole value.
    for edited in [
        ">alice<!---->@example.com<",
        ">alice@example.com<!-- -->.evil.com<",
        "><![CDATA[alice@example.com]]><",
        ">&#97;lice@example.com<",
    ] {
        let xml = ASSERTION.replace(">alice@example.com<", edited);
        let result = check(&xml);
        if edited.contains(".evil.com") {
            assert_eq!(result, Err(Error::Invalid), "text added after a comment is content");
        } else {
            assert_eq!(result.as_ref(), Ok(&genuine), "{edited}");
        }
    }
    // A processing instruction is part of the canonical form.
    let pi = ASSERTION.replace(">alice@example.com<", ">alice<?x y?>@example.com<");
    assert_eq!(check(&pi), Err(Error::Invalid));
    // Even under a WithComments transform: a bare `#ID` reference drops
    // comments before any transform (XML-DSig 4.4.3.3), so the comment is
    // neither signed nor handed back.
    let with_comments = check(WITH_COMMENTS).expect("verifies as signed");
    assert!(with_comments.contains(">alice@example.com<"), "{with_comments}");
    let commented = WITH_COMMENTS.replace(">alice@example.com<", ">alice<!---->@example.com<");
    let read = check(&commented);
    assert_eq!(read.as_ref(), Ok(&with_comments));
    assert!(!read.unwrap_or_default().contains("<!--"));
}

#[test]
fn namespace_tricks_change_nothing_that_was_signed() {
    let genuine = genuine();
    // `ds` rebound: there is no XML-DSig signature left.
    let rebound = ASSERTION.replace(
        "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
        "xmlns:ds=\"urn:evil\"",
    );
    assert_eq!(check(&rebound), Err(Error::Unsigned));
    // A look-alike Signature in another namespace is not a signature.
    let look_alike = response(&format!("<x:Signature xmlns:x=\"urn:x\"/>{ASSERTION}"));
    assert_eq!(check(&look_alike).as_ref(), Ok(&genuine));
    // A default namespace, xml:lang and the saml prefix declared on the
    // wrapper: exclusive c14n re-declares what the signed element uses.
    let wrapper = format!(
        "<samlp:Response xmlns=\"urn:evil\" {SAML} xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         ID=\"r9\" xml:lang=\"de\">{}</samlp:Response>",
        ASSERTION.replacen(&format!(" {SAML}"), "", 1)
    );
    assert_eq!(check(&wrapper).as_ref(), Ok(&genuine));
    // The saml prefix inherited from the wrapper, bound to another URI:
    // the canonical form names that URI, so the digest fails.
    let other_uri = wrapper.replace(SAML, "xmlns:saml=\"urn:evil:assertion\"");
    assert_eq!(check(&other_uri), Err(Error::Invalid));
}

#[test]
fn only_one_reference_to_the_parents_id_is_followed() {
    let not_parent = Err(Error::Reference("the URI is not the parent's ID"));
    for uri in ["URI=\"\"", "URI=\"#xpointer(id('a1'))\"", "URI=\"#xpointer(/)\"", ""] {
        let xml = ASSERTION.replace("URI=\"#a1\"", uri);
        assert_eq!(check(&xml), not_parent, "{uri:?}");
    }
    // Two References (the second could cover anything).
    let start = ASSERTION.find("<ds:Reference").expect("reference");
    let end = ASSERTION.find("</ds:Reference>").expect("end") + "</ds:Reference>".len();
    let doubled = format!("{}{}{}", &ASSERTION[..end], &ASSERTION[start..end], &ASSERTION[end..]);
    assert_eq!(
        check(&doubled),
        Err(Error::Reference("not exactly one SignedInfo or Reference"))
    );
    // SignedInfo canonicalised by something that is not a c14n (XSLT).
    let xslt = ASSERTION.replace(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"/>",
    );
    assert_ne!(xslt, ASSERTION);
    assert_eq!(
        check(&xslt),
        Err(Error::Library("the signature could not be processed"))
    );
    // The signature moved into an element without an ID.
    let (signature, unsigned) = split_signature(ASSERTION);
    let in_subject = unsigned.replace("<saml:NameID>", &format!("{signature}<saml:NameID>"));
    assert_eq!(
        check(&in_subject),
        Err(Error::Reference("the signed element has no ID"))
    );
}

#[test]
fn only_the_idps_keys_verify_whatever_key_info_says() {
    // The stranger signed and put their certificate in KeyInfo.
    assert!(STRANGER_KEYINFO.contains("<ds:X509Certificate>"));
    assert_eq!(check(STRANGER_KEYINFO), Err(Error::Invalid));
    assert_eq!(
        verify(STRANGER_KEYINFO, &[idp()], None).map(|s| s.xml),
        Err(Error::Invalid)
    );
    assert!(
        verify(STRANGER_KEYINFO, &[stranger()], Some(STRICT)).is_ok(),
        "the fixture is sound"
    );
    // HMAC keyed with the IdP's public certificate: refused by the list,
    // and without a list the RSA key cannot key an HMAC.
    assert_eq!(check(HMAC), Err(Error::Algorithm));
    assert_eq!(
        verify(HMAC, &[idp()], None),
        Err(Error::Library("the signature could not be processed"))
    );
}

#[test]
fn many_threads_with_good_and_forged_documents_get_each_its_own_answer() {
    let key = std::sync::Arc::new(idp());
    let genuine = genuine();
    let forged = ASSERTION.replace(">alice@example.com<", ">admin@example.com<");
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let (key, genuine, forged) = (key.clone(), genuine.clone(), forged.clone());
            std::thread::spawn(move || {
                for i in 0..20 {
                    let keys = std::slice::from_ref(&*key);
                    if (t + i) % 2 == 0 {
                        assert_eq!(
                            verify(ASSERTION, keys, Some(STRICT)).map(|s| s.xml),
                            Ok(genuine.clone())
                        );
                    } else {
                        assert_eq!(verify(&forged, keys, Some(STRICT)), Err(Error::Invalid));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("every answer was right");
    }
    // More threads than the pool keeps: the extra copies were dropped.
    assert!((1..=16).contains(&key.idle()), "{}", key.idle());
}

#[test]
fn a_key_of_another_type_does_not_hide_the_one_that_signed() {
    // An IdP rolling from EC to RSA (or back) publishes both; libxmlsec1
    // fails (rather than says no) with a key of the wrong type.
    let ec = || CertificateKey::from_der(include_bytes!("../tests/fixtures/ec.der")).expect("loads");
    assert!(verify(ASSERTION, &[ec(), idp()], Some(STRICT)).is_ok());
    assert_eq!(
        verify(ASSERTION, &[ec(), stranger()], Some(STRICT)),
        Err(Error::Invalid)
    );
    assert_eq!(
        verify(ASSERTION, &[ec()], Some(STRICT)),
        Err(Error::Library("the signature could not be processed"))
    );
}
