//! `[scim]`: doorward's SCIM 2.0 server, which identity providers use to
//! push users and groups (RFC 7643/7644).

use std::net::SocketAddr;

use serde::Deserialize;

use super::units::{ByteSize, SecretSource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// Off by default: nobody can provision until it is turned on.
    pub enabled: bool,
    /// Where the SCIM endpoints live: under the internal prefix on the
    /// main listener (`/_doorward/scim/v2`), at the root of `listen`.
    pub base_path: String,
    /// A separate listener for SCIM only, so it need not be exposed with
    /// the app (e.g. "0.0.0.0:4190").
    pub listen: Option<SocketAddr>,
    /// The IdP's bearer token (e.g. `{ env = "DOORWARD_SCIM_TOKEN" }`).
    pub bearer_token: Option<SecretSource>,
    /// HTTP Basic credentials, for IdPs that use them.
    pub basic_user: Option<String>,
    pub basic_password: Option<SecretSource>,
    /// Largest request body.
    pub max_body: ByteSize,
    /// Most resources one list answer returns.
    pub max_page_size: u32,
    /// How a login finds its directory user: its `email` or
    /// `preferred_username` claim against userName (ignoring case), or its
    /// subject against externalId.
    pub match_on: MatchOn,
    /// Refuse logins of users the IdP has not provisioned.
    pub require_provisioned: bool,
    /// The `[[provider]]` whose users the directory describes: its facts
    /// (and `require_provisioned`) apply to that provider's logins only.
    /// Required with several providers; defaults to the only one.
    pub provider: Option<String>,
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            base_path: "/scim/v2".into(),
            listen: None,
            bearer_token: None,
            basic_user: None,
            basic_password: None,
            max_body: ByteSize(1 << 20),
            max_page_size: 200,
            match_on: MatchOn::Email,
            require_provisioned: false,
            provider: None,
        }
    }
}

impl ScimConfig {
    /// The provider the directory is bound to: the named one, or the only
    /// one configured. `None` with SCIM off, or when the choice is
    /// ambiguous (`doorward check` refuses that config).
    pub fn bound_provider<'a>(&'a self, provider_names: &[&'a str]) -> Option<&'a str> {
        if !self.enabled {
            return None;
        }
        match (&self.provider, provider_names) {
            (Some(name), _) => provider_names.iter().copied().find(|n| n == name),
            (None, [only]) => Some(only),
            (None, _) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOn {
    Email,
    PreferredUsername,
    Subject,
}
