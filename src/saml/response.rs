//! Every check on a SAML Response posted to the ACS (SAML Core §3.2.2,
//! Profiles §4.1.4), in the order an attacker would have to beat them:
//! bounded size; no DTD; exactly one assertion in the whole document (two
//! is a wrapping attack); the IdP's signature over the Response or the
//! Assertion, after which only the signed content is read; issuer,
//! destination, recipient, audience, time bounds, a bearer confirmation and
//! `InResponseTo` against the login this browser started. Replay is the
//! caller's check: it owns the durable store.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use samael::schema::{Assertion, Response};

use super::decrypt::Sealed;
use super::xml::{count_elements, first_element, refuse_dtd, root_name, without_element};
use super::{IdpMetadata, SamlError, SamlProvider};
use crate::login::LoginResult;

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// How old an assertion may be when it arrives (it travels through the
/// browser straight after the IdP made it).
const MAX_ISSUE_AGE: i64 = 300;

/// A login a Response proved, with what the replay check needs.
#[derive(Debug)]
pub struct SamlLogin {
    pub result: LoginResult,
    pub assertion_id: String,
    /// Until when the assertion ID must be remembered.
    pub replay_until: i64,
}

/// The login this browser started, if any (None: unsolicited).
pub type Expected<'a> = Option<&'a str>;

impl SamlProvider {
    /// The issuer a raw response names (unsigned: only used to pick which
    /// provider's keys verify it).
    pub fn peek_issuer(encoded: &str, max: usize) -> Option<String> {
        let xml = decode(encoded, max).ok()?;
        refuse_dtd(&xml).ok()?;
        first_element(&xml, "Issuer").ok()?.map(|e| e.text)
    }

    /// Validates a base64 `SAMLResponse` from the ACS form.
    pub fn validate_response(&self, encoded: &str, expected: Expected<'_>) -> Result<SamlLogin, SamlError> {
        let xml = decode(encoded, self.max_response)?;
        refuse_dtd(&xml)?;
        let metadata = self.current_metadata()?;
        if root_name(&xml)? != "Response" {
            return Err(SamlError::Malformed("the document is not a samlp:Response".into()));
        }
        let plain = count_elements(&xml, "Assertion")?;
        let encrypted = count_elements(&xml, "EncryptedAssertion")?;
        if plain + encrypted != 1 {
            return Err(SamlError::AssertionCount(plain + encrypted));
        }
        if encrypted == 1 {
            return self.validate_encrypted(&xml, expected, &metadata);
        }
        // The envelope is not trusted (it may be unsigned), but what it says
        // can still be a reason to refuse.
        let envelope: Response = xml
            .parse()
            .map_err(|e| SamlError::Malformed(format!("the Response does not parse: {e}")))?;
        self.check_envelope(&envelope, expected)?;
        if count_elements(&xml, "Signature")? == 0 {
            return Err(SamlError::Unsigned);
        }
        let signed = self.verified(&xml, &metadata)?;
        let reduced = signed.xml;
        // From here on only signed content is read.
        let assertion = match root_name(&reduced)?.as_str() {
            // A signed Response inside the attacker's document (XSW): the
            // envelope checked above would not be the one signed.
            "Response" if !signed.root => return Err(not_root()),
            "Response" => {
                let response: Response = reduced
                    .parse()
                    .map_err(|e| SamlError::Malformed(format!("the signed Response does not parse: {e}")))?;
                self.check_signed_response(&response, expected, &metadata)?;
                response.assertion.ok_or(SamlError::AssertionCount(0))?
            }
            "Assertion" => reduced
                .parse::<Assertion>()
                .map_err(|e| SamlError::Malformed(format!("the signed Assertion does not parse: {e}")))?,
            other => return Err(SamlError::Malformed(format!("the signature covers a `{other}`"))),
        };
        self.accept(&assertion, &reduced, expected, &metadata)
    }

    /// A Response whose assertion is encrypted to the SP key. A signature on
    /// the Response is verified before anything is decrypted (it covers the
    /// ciphertext); without one, the decrypted Assertion must be signed,
    /// and CBC ciphertexts are refused (nothing vouches for them).
    fn validate_encrypted(&self, xml: &str, expected: Expected<'_>, idp: &IdpMetadata) -> Result<SamlLogin, SamlError> {
        let key = self.sp_key.as_ref().ok_or(SamlError::EncryptedWithoutKey)?;
        let envelope: Response = without_element(xml, "EncryptedAssertion")?
            .parse()
            .map_err(|e| SamlError::Malformed(format!("the Response does not parse: {e}")))?;
        self.check_envelope(&envelope, expected)?;
        // Outside the ciphertext, a Signature can only be the Response's.
        let response_signed = count_elements(xml, "Signature")? > 0;
        let sealed = if response_signed {
            let signed = self.verified(xml, idp)?;
            let reduced = signed.xml;
            if root_name(&reduced)? != "Response" {
                return Err(SamlError::Malformed("the signature does not cover the Response".into()));
            }
            if !signed.root {
                return Err(not_root());
            }
            let response: Response = without_element(&reduced, "EncryptedAssertion")?
                .parse()
                .map_err(|e| SamlError::Malformed(format!("the signed Response does not parse: {e}")))?;
            self.check_signed_response(&response, expected, idp)?;
            Sealed::read(&reduced)?
        } else {
            Sealed::read(xml)?
        };
        let plain = sealed.open(key, response_signed)?;
        refuse_dtd(&plain)?;
        if root_name(&plain)? != "Assertion"
            || count_elements(&plain, "Assertion")? != 1
            || count_elements(&plain, "EncryptedAssertion")? != 0
        {
            return Err(SamlError::Malformed(
                "the encrypted content is not one Assertion".into(),
            ));
        }
        let trusted = if count_elements(&plain, "Signature")? > 0 {
            let signed = self.verified(&plain, idp)?;
            let reduced = signed.xml;
            if !signed.root || root_name(&reduced)? != "Assertion" {
                return Err(SamlError::Malformed(
                    "the signature does not cover the Assertion".into(),
                ));
            }
            reduced
        } else if response_signed {
            plain
        } else {
            return Err(SamlError::Unsigned);
        };
        let assertion: Assertion = trusted
            .parse()
            .map_err(|e| SamlError::Malformed(format!("the decrypted Assertion does not parse: {e}")))?;
        self.accept(&assertion, &trusted, expected, idp)
    }

    /// The checks on a trusted assertion, then the login it proves.
    fn accept(
        &self,
        assertion: &Assertion,
        signed_xml: &str,
        expected: Expected<'_>,
        idp: &IdpMetadata,
    ) -> Result<SamlLogin, SamlError> {
        let replay_until = self.check_assertion(assertion, expected, idp)?;
        let name_id = first_element(signed_xml, "NameID")?.unwrap_or_default();
        let result = super::attributes::login_result(self, assertion, &name_id, &idp.entity_id)?;
        Ok(SamlLogin {
            result,
            assertion_id: assertion.id.clone(),
            replay_until,
        })
    }

    fn check_envelope(&self, envelope: &Response, expected: Expected<'_>) -> Result<(), SamlError> {
        check_status(envelope)?;
        if let Some(destination) = &envelope.destination {
            if *destination != self.acs_url {
                return Err(SamlError::WrongDestination(destination.clone()));
            }
        }
        match (expected, envelope.in_response_to.as_deref()) {
            (Some(want), Some(got)) if want != got => Err(SamlError::InResponseToMismatch),
            (None, Some(_)) => Err(SamlError::InResponseToMismatch),
            _ => Ok(()),
        }
    }

    fn check_signed_response(
        &self,
        response: &Response,
        expected: Expected<'_>,
        idp: &IdpMetadata,
    ) -> Result<(), SamlError> {
        if let Some(issuer) = response.issuer.as_ref().and_then(|i| i.value.as_deref()) {
            if issuer != idp.entity_id {
                return Err(SamlError::WrongIssuer(issuer.to_string()));
            }
        }
        self.check_envelope(response, expected)?;
        if expected.is_some() && response.in_response_to.is_none() {
            return Err(SamlError::InResponseToMismatch);
        }
        Ok(())
    }

    /// The assertion's own rules; returns until when its ID must be
    /// remembered against replay. The order only decides which reason is
    /// logged when several apply: every check must pass.
    fn check_assertion(
        &self,
        assertion: &Assertion,
        expected: Expected<'_>,
        idp: &IdpMetadata,
    ) -> Result<i64, SamlError> {
        let now = self.clock.now();
        let skew = self.skew;
        let issuer = assertion.issuer.value.as_deref().unwrap_or_default();
        if issuer != idp.entity_id {
            return Err(SamlError::WrongIssuer(issuer.to_string()));
        }
        let conditions = assertion.conditions.as_ref();
        if let Some(not_before) = conditions.and_then(|c| c.not_before) {
            if not_before.timestamp() > now + skew {
                return Err(SamlError::NotYetValid);
            }
        }
        let mut until = i64::MAX;
        if let Some(not_after) = conditions.and_then(|c| c.not_on_or_after) {
            if not_after.timestamp() <= now - skew {
                return Err(SamlError::Expired);
            }
            until = until.min(not_after.timestamp());
        }
        let issued = assertion.issue_instant.timestamp();
        if issued > now + skew || issued < now - MAX_ISSUE_AGE - skew {
            return Err(SamlError::IssueInstant);
        }
        let subject = assertion.subject.as_ref().ok_or(SamlError::NoSubject)?;
        let bearer = subject
            .subject_confirmations
            .iter()
            .flatten()
            .filter(|c| c.method.as_deref() == Some(BEARER))
            .find_map(|c| c.subject_confirmation_data.as_ref())
            .ok_or(SamlError::NoBearerConfirmation)?;
        match bearer.recipient.as_deref() {
            Some(recipient) if recipient == self.acs_url => {}
            other => return Err(SamlError::WrongRecipient(other.unwrap_or("(none)").to_string())),
        }
        let not_after = bearer
            .not_on_or_after
            .map(|t: DateTime<Utc>| t.timestamp())
            .ok_or(SamlError::Expired)?;
        if not_after <= now - skew {
            return Err(SamlError::Expired);
        }
        if bearer.not_before.is_some_and(|t| t.timestamp() > now + skew) {
            return Err(SamlError::NotYetValid);
        }
        // Every AudienceRestriction must name us, and there must be one
        // (a bearer assertion without one could be used at any SP).
        let restrictions = conditions
            .and_then(|c| c.audience_restrictions.as_ref())
            .filter(|r| !r.is_empty())
            .ok_or(SamlError::WrongAudience)?;
        if !restrictions.iter().all(|r| r.audience.contains(&self.sp_entity_id)) {
            return Err(SamlError::WrongAudience);
        }
        if subject.name_id.as_ref().is_none_or(|n| n.value.trim().is_empty()) {
            return Err(SamlError::NoSubject);
        }
        match (expected, bearer.in_response_to.as_deref()) {
            (Some(want), Some(got)) if want == got => {}
            (None, None) if self.allow_unsolicited => {}
            (None, None) => return Err(SamlError::Unsolicited),
            _ => return Err(SamlError::InResponseToMismatch),
        }
        Ok(until.min(not_after) + skew)
    }
}

fn not_root() -> SamlError {
    SamlError::Malformed("the signed Response is not the document's root".into())
}

fn check_status(response: &Response) -> Result<(), SamlError> {
    let code = response
        .status
        .as_ref()
        .and_then(|s| s.status_code.value.as_deref())
        .unwrap_or("(none)");
    if code != SUCCESS {
        return Err(SamlError::Status(code.to_string()));
    }
    Ok(())
}

/// Bounded base64 to UTF-8, before any XML parser sees it.
fn decode(encoded: &str, max: usize) -> Result<String, SamlError> {
    if encoded.len() > max {
        return Err(SamlError::TooLarge);
    }
    let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?;
    String::from_utf8(raw).map_err(|_| SamlError::NotUtf8)
}
