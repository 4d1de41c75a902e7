//! A verified assertion as claims, so SAML users go through the same
//! identity engine as OIDC ones: the NameID is `sub`; every attribute is a
//! claim under its `Name` (and its `FriendlyName`), one value as a string
//! and several as an array, so `[identity.groups] claim = "memberOf"` or
//! the Entra groups URI just work; `email` and `preferred_username` come
//! from the usual attributes or the ones configured.

use serde_json::{json, Map, Value};

use super::logout::NameIdHint;
use super::xml::Element;
use super::{SamlError, SamlProvider};
use crate::identity::Claims;
use crate::login::{Authentication, LoginResult, Tokens};

const EMAIL_NAME_ID: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// Where IdPs commonly put the email address: LDAP `mail`, its OID, the
/// WS-Federation claim URI (ADFS, Entra), and plain `email`.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "mail",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "email",
];
/// Where IdPs commonly put the user name.
const USERNAME_ATTRIBUTES: &[&str] = &["uid", "urn:oid:0.9.2342.19200300.100.1.1", "username"];

fn first_string(claims: &Claims, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(values) => values.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The neutral login result for a verified assertion.
pub fn login_result(
    provider: &SamlProvider,
    assertion: &samael::schema::Assertion,
    name_id: &Element,
    idp_entity_id: &str,
) -> Result<LoginResult, SamlError> {
    let subject = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .ok_or(SamlError::NoSubject)?;
    let format = subject
        .format
        .clone()
        .or_else(|| name_id.attribute("Format").map(str::to_string));
    let mut claims: Claims = Map::new();
    let mut attributes = Map::new();
    for attribute in assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
    {
        let values: Vec<Value> = attribute
            .values
            .iter()
            .filter_map(|v| v.value.clone())
            .map(Value::String)
            .collect();
        let value = match values.len() {
            1 => values[0].clone(),
            _ => Value::Array(values),
        };
        for name in [&attribute.name, &attribute.friendly_name].into_iter().flatten() {
            if !name.is_empty() && !claims.contains_key(name) {
                claims.insert(name.clone(), value.clone());
            }
        }
        if let Some(name) = &attribute.name {
            attributes.insert(name.clone(), value);
        }
    }
    let email = match &provider.email_attribute {
        Some(name) => first_string(&claims, name),
        None => EMAIL_ATTRIBUTES.iter().find_map(|name| first_string(&claims, name)),
    }
    .or_else(|| (format.as_deref() == Some(EMAIL_NAME_ID)).then(|| subject.value.clone()));
    let username = match &provider.username_attribute {
        Some(name) => first_string(&claims, name),
        None => USERNAME_ATTRIBUTES.iter().find_map(|name| first_string(&claims, name)),
    };
    claims.insert("sub".into(), json!(subject.value));
    claims.insert("iss".into(), json!(idp_entity_id));
    if let Some(email) = email {
        claims.insert("email".into(), json!(email));
    }
    if let Some(username) = username {
        claims.insert("preferred_username".into(), json!(username));
    }
    let statement = assertion.authn_statements.as_ref().and_then(|s| s.first());
    let session_index = statement.and_then(|s| s.session_index.clone());
    let hint = NameIdHint {
        value: subject.value.clone(),
        format: format.clone(),
        name_qualifier: name_id.attribute("NameQualifier").map(str::to_string),
        sp_name_qualifier: name_id.attribute("SPNameQualifier").map(str::to_string),
    };
    let snapshot = json!({
        "saml": {
            "name_id": subject.value,
            "name_id_format": format,
            "session_index": session_index,
            "attributes": attributes,
        },
        "merged": claims,
    });
    Ok(LoginResult {
        provider: provider.name.clone(),
        issuer: idp_entity_id.to_string(),
        subject: subject.value.clone(),
        idp_session: session_index,
        logout_hint: serde_json::to_string(&hint).ok(),
        idp_session_end: statement.and_then(|s| s.session_not_on_or_after).map(|t| t.timestamp()),
        merged: claims,
        claims: snapshot,
        tokens: Tokens::default(),
        authentication: authentication_of(statement),
    })
}

/// The assertion's AuthnStatement as doorward judges logins: the context
/// class is the `acr`, the instant the `auth_time`. SAML names no methods.
fn authentication_of(statement: Option<&samael::schema::AuthnStatement>) -> Authentication {
    Authentication {
        acr: statement
            .and_then(|s| s.authn_context.as_ref())
            .and_then(|c| c.value.as_ref())
            .and_then(|class| class.value.as_deref())
            .map(str::trim)
            .filter(|class| !class.is_empty())
            .map(str::to_string),
        amr: Vec::new(),
        auth_time: statement.and_then(|s| s.authn_instant).map(|t| t.timestamp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AuthnStatement as samael reads it out of a verified assertion.
    fn statement(xml: &str) -> samael::schema::AuthnStatement {
        match quick_xml::de::from_str(xml) {
            Ok(statement) => statement,
            Err(e) => panic!("not an AuthnStatement ({e}): {xml}"),
        }
    }

    #[test]
    fn the_class_is_the_acr_and_the_instant_the_auth_time() {
        let read = authentication_of(Some(&statement(
            r#"<saml:AuthnStatement xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" AuthnInstant="2024-05-01T10:00:00Z" SessionIndex="_s"><saml:AuthnContext><saml:AuthnContextClassRef>
                urn:oasis:names:tc:SAML:2.0:ac:classes:X509
            </saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
        )));
        assert_eq!(
            read,
            Authentication {
                acr: Some("urn:oasis:names:tc:SAML:2.0:ac:classes:X509".into()),
                amr: Vec::new(),
                auth_time: Some(1_714_557_600),
            }
        );
    }

    #[test]
    fn a_missing_or_blank_class_and_a_missing_statement_prove_nothing() {
        let blank = authentication_of(Some(&statement(
            r#"<saml:AuthnStatement xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" AuthnInstant="2024-05-01T10:00:00.500Z"><saml:AuthnContext><saml:AuthnContextClassRef> </saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
        )));
        assert_eq!(blank.acr, None, "a blank class is no class");
        assert_eq!(blank.auth_time, Some(1_714_557_600), "fractions of a second dropped");
        let bare = authentication_of(Some(&statement(
            r#"<saml:AuthnStatement xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>"#,
        )));
        assert_eq!(bare, Authentication::default());
        assert_eq!(authentication_of(None), Authentication::default());
    }
}
