//! SP-initiated login: an AuthnRequest to the IdP's SSO endpoint over
//! HTTP-Redirect (signed when an SP key is configured), asking for the
//! response at doorward's ACS over HTTP-POST. Its ID (128 random bits) is
//! what the response's `InResponseTo` must name; the RelayState is an
//! opaque key to the pending login, never the return URL itself.
//!
//! A step-up login carries the route's ask: its context classes as a
//! RequestedAuthnContext and its `max_age` as ForceAuthn. Both are only
//! requests: the IdP may answer otherwise, and the login callback judges
//! what the assertion says, not what was asked.

use super::xml::escape;
use super::{redirect, SamlError, SamlProvider};
use crate::login::AssuranceAsk;

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

impl SamlProvider {
    /// The redirect URL and the request's ID. `ask`: what the login must
    /// prove (RequestedAuthnContext, ForceAuthn).
    pub fn authn_request_redirect(&self, relay_state: &str, ask: &AssuranceAsk) -> Result<(String, String), SamlError> {
        let metadata = self.current_metadata()?;
        let bytes: [u8; 16] = rand::random();
        let id = format!("_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let instant = chrono::DateTime::from_timestamp(self.clock.now(), 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let request = AuthnRequest {
            id: &id,
            instant: &instant,
            destination: &metadata.sso_url,
            acs: &self.acs_url,
            issuer: &self.sp_entity_id,
            name_id_format: self.name_id_format.as_deref(),
            ask,
        }
        .xml();
        let url = redirect::url(
            &metadata.sso_url,
            "SAMLRequest",
            &request,
            Some(relay_state),
            self.sp_key.as_ref(),
        )?;
        Ok((url, id))
    }
}

/// Everything an AuthnRequest says, gathered so the XML is made (and
/// tested) apart from keys, clocks and metadata.
struct AuthnRequest<'a> {
    id: &'a str,
    instant: &'a str,
    destination: &'a str,
    acs: &'a str,
    issuer: &'a str,
    name_id_format: Option<&'a str>,
    ask: &'a AssuranceAsk,
}

impl AuthnRequest<'_> {
    fn xml(&self) -> String {
        let policy = match self.name_id_format {
            Some(format) => format!(
                "<samlp:NameIDPolicy Format=\"{}\" AllowCreate=\"true\"/>",
                escape(format)
            ),
            None => "<samlp:NameIDPolicy AllowCreate=\"true\"/>".to_string(),
        };
        // max_age cannot be said in SAML; ForceAuthn makes the IdP
        // authenticate afresh, so the AuthnInstant it answers is recent
        // (the callback still checks that it is).
        let force = if self.ask.max_age.is_some() {
            " ForceAuthn=\"true\""
        } else {
            ""
        };
        format!(
            "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
             IssueInstant=\"{instant}\" Destination=\"{destination}\" \
             AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"{POST_BINDING}\"{force}>\
             <saml:Issuer>{issuer}</saml:Issuer>{policy}{context}</samlp:AuthnRequest>",
            id = escape(self.id),
            instant = escape(self.instant),
            destination = escape(self.destination),
            acs = escape(self.acs),
            issuer = escape(self.issuer),
            context = requested_context(&self.ask.acr),
        )
    }
}

/// The RequestedAuthnContext for `classes` (empty: none at all, so the
/// IdP keeps its own default). SAML core 3.4.1 puts it after the
/// NameIDPolicy. `exact`: any one of the listed classes, as a route's
/// `acr` list means; `minimum` would let the IdP choose a class the route
/// does not accept.
fn requested_context(classes: &[String]) -> String {
    if classes.is_empty() {
        return String::new();
    }
    let refs: String = classes
        .iter()
        .map(|class| {
            format!(
                "<saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>",
                escape(class)
            )
        })
        .collect();
    format!("<samlp:RequestedAuthnContext Comparison=\"exact\">{refs}</samlp:RequestedAuthnContext>")
}

#[cfg(test)]
#[path = "authn_tests.rs"]
mod tests;
