//! Single logout (SAML Profiles §4.4). SP-initiated: doorward ends the
//! session, then sends the browser to the IdP with a LogoutRequest naming
//! the NameID and SessionIndex it logged in with. IdP-initiated: a signed
//! LogoutRequest (HTTP-Redirect or HTTP-POST) ends every matching session
//! and is answered with a LogoutResponse; [`IdpLogoutRequest::replay_until`]
//! says how long its ID is to be remembered, so it is accepted once. The XML is written here (samael
//! writes LogoutRequest children out of schema order and cannot read a
//! SessionIndex element), and read with the small helpers in [`super::xml`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::redirect;
use super::xml::{all_texts, escape, first_element, refuse_dtd, root_name};
use super::{SamlError, SamlProvider};
use crate::login::LogoutContext;

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// How long an IdP's LogoutRequest is good for without a NotOnOrAfter.
const MAX_REQUEST_AGE: i64 = 300;

/// The NameID a session logged in with, kept to log out with (a
/// LogoutRequest must repeat it exactly, qualifiers included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameIdHint {
    pub value: String,
    pub format: Option<String>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
}

impl NameIdHint {
    fn xml(&self) -> String {
        let mut attributes = String::new();
        for (name, value) in [
            ("Format", &self.format),
            ("NameQualifier", &self.name_qualifier),
            ("SPNameQualifier", &self.sp_name_qualifier),
        ] {
            if let Some(value) = value {
                attributes.push_str(&format!(" {name}=\"{}\"", escape(value)));
            }
        }
        format!("<saml:NameID{attributes}>{}</saml:NameID>", escape(&self.value))
    }
}

/// A LogoutRequest the IdP sent, verified.
#[derive(Debug, Clone)]
pub struct IdpLogoutRequest {
    pub id: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
    /// How it came, to answer the same way.
    pub relay_state: Option<String>,
    /// Until when this request would be accepted (its IssueInstant window):
    /// how long its ID must be remembered to accept it once.
    pub replay_until: i64,
}

/// A fresh message ID (128 bits; an XML ID must not start with a digit).
fn message_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

fn instant(now: i64) -> String {
    chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl SamlProvider {
    /// The browser's way to the IdP's logout, carrying a LogoutRequest for
    /// the session that just ended; None when the IdP has no SLO endpoint
    /// or the session kept no NameID.
    pub fn logout_request_redirect(&self, context: &LogoutContext<'_>) -> Option<String> {
        let metadata = self.current_metadata().ok()?;
        let destination = metadata.slo_url.as_deref()?;
        let hint: NameIdHint = serde_json::from_str(context.logout_hint?).ok()?;
        let session_index = context.idp_session.map_or(String::new(), |index| {
            format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(index))
        });
        let request = format!(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
             IssueInstant=\"{instant}\" Destination=\"{destination}\">\
             <saml:Issuer>{issuer}</saml:Issuer>{name_id}{session_index}</samlp:LogoutRequest>",
            id = message_id(),
            instant = instant(self.clock.now()),
            destination = escape(destination),
            issuer = escape(&self.sp_entity_id),
            name_id = hint.xml(),
        );
        redirect::url(destination, "SAMLRequest", &request, None, self.sp_key.as_ref())
            .map_err(|e| tracing::warn!(provider = %self.name, error = %e, "cannot build the SAML LogoutRequest"))
            .ok()
    }

    /// Reads and checks a LogoutRequest from the IdP, from the raw query
    /// (HTTP-Redirect) or a posted `SAMLRequest` (HTTP-POST, signed XML).
    pub fn receive_logout_request(
        &self,
        query: Option<&str>,
        posted: Option<(&str, Option<&str>)>,
    ) -> Result<IdpLogoutRequest, SamlError> {
        let metadata = self.current_metadata()?;
        let (xml, relay_state) = match (query, posted) {
            (_, Some((encoded, relay))) => {
                if encoded.len() > self.max_response {
                    return Err(SamlError::TooLarge);
                }
                let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                let raw = STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?;
                let xml = String::from_utf8(raw).map_err(|_| SamlError::NotUtf8)?;
                refuse_dtd(&xml)?;
                // Only what the IdP's signature covers is read.
                let signed = self.verified(&xml, &metadata)?;
                // The message itself signed, not one wrapped in another
                // document (the wrapper is never read, but nor is it asked
                // for).
                if !signed.root {
                    return Err(SamlError::Malformed(
                        "the signed LogoutRequest is not the document's root".into(),
                    ));
                }
                (signed.xml, relay.map(str::to_string))
            }
            (Some(query), None) => {
                let received = redirect::receive(query, "SAMLRequest", &metadata.x509, self.allow_sha1)?;
                refuse_dtd(&received.xml)?;
                (received.xml, received.relay_state)
            }
            (None, None) => return Err(SamlError::Malformed("no SAMLRequest".into())),
        };
        if root_name(&xml)? != "LogoutRequest" {
            return Err(SamlError::Malformed("not a LogoutRequest".into()));
        }
        let root = first_element(&xml, "LogoutRequest")?.unwrap_or_default();
        let issuer = first_element(&xml, "Issuer")?.map(|e| e.text).unwrap_or_default();
        if issuer != metadata.entity_id {
            return Err(SamlError::WrongIssuer(issuer));
        }
        if let Some(destination) = root.attribute("Destination") {
            if destination != self.slo_url {
                return Err(SamlError::WrongDestination(destination.to_string()));
            }
        }
        let now = self.clock.now();
        let parse_time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp()).ok();
        let issued = root
            .attribute("IssueInstant")
            .and_then(parse_time)
            .ok_or(SamlError::IssueInstant)?;
        if issued > now + self.skew || issued < now - MAX_REQUEST_AGE - self.skew {
            return Err(SamlError::IssueInstant);
        }
        if let Some(not_after) = root.attribute("NotOnOrAfter") {
            if parse_time(not_after).is_none_or(|t| t <= now - self.skew) {
                return Err(SamlError::Expired);
            }
        }
        let id = root
            .attribute("ID")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SamlError::Malformed("the LogoutRequest has no ID".into()))?
            .to_string();
        let name_id = first_element(&xml, "NameID")?
            .map(|e| e.text)
            .filter(|v| !v.is_empty())
            .ok_or(SamlError::NoSubject)?;
        Ok(IdpLogoutRequest {
            id,
            name_id,
            session_indexes: all_texts(&xml, "SessionIndex")?,
            relay_state,
            // The IssueInstant check above refuses it after this, whatever
            // its NotOnOrAfter says.
            replay_until: issued + MAX_REQUEST_AGE + self.skew + 1,
        })
    }

    /// The redirect answering an IdP's LogoutRequest.
    pub fn logout_response_redirect(&self, request: &IdpLogoutRequest) -> Result<String, SamlError> {
        let metadata = self.current_metadata()?;
        let destination = metadata
            .slo_response_url
            .as_deref()
            .or(metadata.slo_url.as_deref())
            .ok_or_else(|| SamlError::Metadata("the IdP has no HTTP-Redirect SingleLogoutService".into()))?;
        let response = format!(
            "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
             IssueInstant=\"{instant}\" Destination=\"{destination}\" InResponseTo=\"{in_response_to}\">\
             <saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"{SUCCESS}\"/>\
             </samlp:Status></samlp:LogoutResponse>",
            id = message_id(),
            instant = instant(self.clock.now()),
            destination = escape(destination),
            in_response_to = escape(&request.id),
            issuer = escape(&self.sp_entity_id),
        );
        redirect::url(
            destination,
            "SAMLResponse",
            &response,
            request.relay_state.as_deref(),
            self.sp_key.as_ref(),
        )
    }

    /// Checks the IdP's answer to doorward's LogoutRequest (redirect
    /// binding): signed by the IdP, from the IdP, and a success.
    pub fn receive_logout_response(&self, query: &str) -> Result<(), SamlError> {
        let metadata = self.current_metadata()?;
        let received = redirect::receive(query, "SAMLResponse", &metadata.x509, self.allow_sha1)?;
        refuse_dtd(&received.xml)?;
        if root_name(&received.xml)? != "LogoutResponse" {
            return Err(SamlError::Malformed("not a LogoutResponse".into()));
        }
        let issuer = first_element(&received.xml, "Issuer")?
            .map(|e| e.text)
            .unwrap_or_default();
        if issuer != metadata.entity_id {
            return Err(SamlError::WrongIssuer(issuer));
        }
        let status = first_element(&received.xml, "StatusCode")?
            .and_then(|e| e.attribute("Value").map(str::to_string))
            .unwrap_or_default();
        if status != SUCCESS {
            return Err(SamlError::Status(status));
        }
        Ok(())
    }
}
