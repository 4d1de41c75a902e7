//! The AuthnRequest doorward writes, read back with samael's own schema:
//! what a step-up asks for is there, escaped, and in the order SAML core
//! 3.4.1 gives; a plain login asks for nothing more than before.

use std::str::FromStr;

use samael::schema::{AuthnContextComparison, AuthnRequest as Parsed};

use super::*;

const X509: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509";

fn request(ask: &AssuranceAsk) -> String {
    AuthnRequest {
        id: "_request-1",
        instant: "2024-05-01T10:00:00Z",
        destination: "https://idp.test/sso?tenant=a&b",
        acs: "https://sp.test/_doorward/saml/acs",
        issuer: "urn:test:sp",
        name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
        ask,
    }
    .xml()
}

fn parsed(xml: &str) -> Parsed {
    match Parsed::from_str(xml) {
        Ok(parsed) => parsed,
        Err(e) => panic!("the AuthnRequest does not parse: {e}\n{xml}"),
    }
}

fn classes(parsed: &Parsed) -> Vec<String> {
    parsed
        .requested_authn_context
        .as_ref()
        .and_then(|c| c.authn_context_class_refs.as_ref())
        .map(|refs| refs.iter().filter_map(|r| r.value.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_plain_login_asks_for_no_context_and_no_fresh_authentication() {
    let xml = request(&AssuranceAsk::default());
    let parsed = parsed(&xml);
    assert_eq!(parsed.id, "_request-1");
    assert_eq!(parsed.destination.as_deref(), Some("https://idp.test/sso?tenant=a&b"));
    assert!(parsed.name_id_policy.is_some());
    assert_eq!(parsed.requested_authn_context, None);
    assert_eq!(parsed.force_authn, None);
    assert!(!xml.contains("RequestedAuthnContext"), "{xml}");
    assert!(!xml.contains("ForceAuthn"), "{xml}");
}

#[test]
fn asked_classes_become_an_exact_requested_context_after_the_name_id_policy() {
    let tricky = "urn:test:ac:a<b>&\"c\"";
    let ask = AssuranceAsk {
        acr: vec![X509.into(), tricky.into()],
        max_age: None,
        amr: Vec::new(),
    };
    let xml = request(&ask);
    let parsed = parsed(&xml);
    assert_eq!(classes(&parsed), vec![X509.to_string(), tricky.to_string()]);
    assert_eq!(
        parsed.requested_authn_context.and_then(|c| c.comparison),
        Some(AuthnContextComparison::Exact)
    );
    assert_eq!(parsed.force_authn, None, "no max_age, no ForceAuthn");
    assert!(xml.contains("a&lt;b&gt;&amp;"), "the class is escaped: {xml}");
    let policy = xml.find("<samlp:NameIDPolicy").unwrap_or(usize::MAX);
    let context = xml.find("<samlp:RequestedAuthnContext").unwrap_or(0);
    assert!(policy < context, "RequestedAuthnContext follows NameIDPolicy: {xml}");
}

#[test]
fn max_age_forces_a_fresh_authentication() {
    let ask = AssuranceAsk {
        acr: Vec::new(),
        max_age: Some(60),
        amr: Vec::new(),
    };
    let xml = request(&ask);
    let parsed = parsed(&xml);
    assert_eq!(parsed.force_authn, Some(true));
    assert_eq!(parsed.requested_authn_context, None, "no classes, no context: {xml}");

    let both = AssuranceAsk {
        acr: vec![X509.into()],
        max_age: Some(900),
        amr: Vec::new(),
    };
    let parsed = self::parsed(&request(&both));
    assert_eq!(parsed.force_authn, Some(true));
    assert_eq!(classes(&parsed), vec![X509.to_string()]);
}
