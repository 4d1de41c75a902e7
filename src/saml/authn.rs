//! SP-initiated login: an AuthnRequest to the IdP's SSO endpoint over
//! HTTP-Redirect (signed when an SP key is configured), asking for the
//! response at doorward's ACS over HTTP-POST. Its ID (128 random bits) is
//! what the response's `InResponseTo` must name; the RelayState is an
//! opaque key to the pending login, never the return URL itself.

use super::xml::escape;
use super::{redirect, SamlError, SamlProvider};
use crate::login::AssuranceAsk;

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

impl SamlProvider {
    /// The redirect URL and the request's ID. `ask`: what the login must
    /// prove (RequestedAuthnContext, ForceAuthn).
    pub fn authn_request_redirect(&self, relay_state: &str, ask: &AssuranceAsk) -> Result<(String, String), SamlError> {
        let _ = ask;
        let metadata = self.current_metadata()?;
        let bytes: [u8; 16] = rand::random();
        let id = format!("_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let instant = chrono::DateTime::from_timestamp(self.clock.now(), 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        let policy = match &self.name_id_format {
            Some(format) => format!(
                "<samlp:NameIDPolicy Format=\"{}\" AllowCreate=\"true\"/>",
                escape(format)
            ),
            None => "<samlp:NameIDPolicy AllowCreate=\"true\"/>".to_string(),
        };
        let request = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
             IssueInstant=\"{instant}\" Destination=\"{destination}\" \
             AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"{POST_BINDING}\">\
             <saml:Issuer>{issuer}</saml:Issuer>{policy}</samlp:AuthnRequest>",
            destination = escape(&metadata.sso_url),
            acs = escape(&self.acs_url),
            issuer = escape(&self.sp_entity_id),
        );
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
