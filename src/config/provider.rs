//! `[[provider]]`: the identity providers, one table each, tagged by
//! `kind`. Each kind has its own keys; a key of another kind is an unknown
//! key, reported with its place like any other.

use std::path::PathBuf;

use serde::Deserialize;

use super::units::{ByteSize, HumanDuration, SecretSource};

/// An identity provider, by protocol.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    Oidc(OidcProviderConfig),
    Saml(SamlProviderConfig),
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Oidc(p) => &p.name,
            Self::Saml(p) => &p.name,
        }
    }

    pub fn display_name(&self) -> &str {
        let (name, display) = match self {
            Self::Oidc(p) => (&p.name, &p.display_name),
            Self::Saml(p) => (&p.name, &p.display_name),
        };
        display.as_deref().unwrap_or(name)
    }

    /// The OpenID Connect settings, for the checks that only apply there.
    pub fn oidc(&self) -> Option<&OidcProviderConfig> {
        match self {
            Self::Oidc(p) => Some(p),
            Self::Saml(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimsSource {
    IdToken,
    Userinfo,
    Merged,
}

/// How doorward authenticates itself at the token (and PAR) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 / OIDC Core 9: a short-lived JWT signed with `client_key`;
    /// no shared secret ever leaves doorward.
    PrivateKeyJwt,
}

/// Pushed authorization requests (RFC 9126): whether the authorization
/// parameters go to the IdP over an authenticated back channel first, so
/// the browser only carries a `request_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParMode {
    /// When discovery advertises `pushed_authorization_request_endpoint`.
    Auto,
    /// Always; a login fails when the IdP has no PAR endpoint.
    Always,
    /// Never, unless the IdP requires it
    /// (`require_pushed_authorization_requests`).
    Never,
}

/// `kind = "oidc"`: an OpenID Connect provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    pub name: String,
    /// Shown on the chooser page when there are several providers.
    pub display_name: Option<String>,
    /// Issuer URL; metadata comes from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretSource>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_claims_source")]
    pub claims_source: ClaimsSource,
    /// Extra authorization request parameters (`prompt`, `acr_values`,
    /// `resource`, ...).
    #[serde(default)]
    pub auth_params: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_client_auth")]
    pub client_auth: ClientAuth,
    /// With `client_auth = "private_key_jwt"`: the PEM private key (RSA,
    /// EC P-256 or Ed25519) client assertions are signed with.
    pub client_key: Option<PathBuf>,
    /// With `private_key_jwt`: the PEM X.509 certificate the IdP registered
    /// for `client_key` (Entra ID); assertions then name it by `x5t` and
    /// `x5t#S256` besides `kid`.
    pub client_certificate: Option<PathBuf>,
    /// The `kid` of client assertions (default: the key's RFC 7638
    /// thumbprint, as `doorward keygen --client` prints it).
    pub client_key_id: Option<String>,
    #[serde(default = "default_par")]
    pub par: ParMode,
    /// ID token signature algorithms accepted. HMAC (HS*) only if listed.
    #[serde(default = "default_algs")]
    pub allowed_algs: Vec<String>,
    /// Clock difference tolerated on exp/iat.
    #[serde(default = "default_skew")]
    pub clock_skew: HumanDuration,
    /// Refuse logins whose `email_verified` is not present and true. (A
    /// claim `email_verified: false` is refused either way.)
    #[serde(default)]
    pub require_email_verified: bool,
    /// Audiences a bearer access token (RFC 9068 `typ: at+jwt`, or a JWT for
    /// an API audience) may carry. Empty: no bearer tokens from this IdP.
    #[serde(default)]
    pub bearer_audiences: Vec<String>,
    /// Hosts (besides the issuer's) distributed claims may be fetched from,
    /// over https only; the access token is never sent anywhere else.
    #[serde(default)]
    pub claim_source_hosts: Vec<String>,
    /// How often discovery and keys are re-read at most (an IdP's
    /// `Cache-Control` shortens it, down to five minutes).
    #[serde(default = "default_metadata_refresh")]
    pub metadata_refresh: HumanDuration,
    /// Security warning: accepts logins and bearer tokens whose
    /// `email_verified` is false, so anyone who can put an unverified
    /// address at the IdP can claim that address here.
    #[serde(default)]
    pub insecure_allow_unverified_email: bool,
    /// Security warning: accepts the client's own ID tokens as bearer
    /// tokens. An ID token proves a login to this client, not a grant to
    /// call an API; anything that ever saw one could replay it.
    #[serde(default)]
    pub insecure_accept_id_token_as_bearer: bool,
    /// Security warning: allows an `http://` issuer off loopback, so
    /// discovery, keys and tokens travel in the clear.
    #[serde(default)]
    pub insecure_allow_http_issuer: bool,
    /// Security warning: allows HMAC (HS256/384/512) ID tokens, which are
    /// signed with the client secret: anyone holding the secret can mint them.
    #[serde(default)]
    pub insecure_allow_hmac: bool,
    /// Extra CA (PEM) for an IdP with a private CA.
    pub ca_file: Option<PathBuf>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_claims_source() -> ClaimsSource {
    ClaimsSource::Merged
}

fn default_client_auth() -> ClientAuth {
    ClientAuth::ClientSecretBasic
}

fn default_par() -> ParMode {
    ParMode::Auto
}

fn default_algs() -> Vec<String> {
    [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ]
    .map(String::from)
    .to_vec()
}

pub(crate) fn default_skew() -> HumanDuration {
    HumanDuration::secs(60)
}

fn default_metadata_refresh() -> HumanDuration {
    HumanDuration::secs(3600)
}

/// `kind = "saml"`: a SAML 2.0 identity provider (doorward is the service
/// provider).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlProviderConfig {
    pub name: String,
    /// Shown on the chooser page when there are several providers.
    pub display_name: Option<String>,
    /// Where the IdP's metadata is read from (re-read every
    /// `idp_metadata_refresh`; the last good copy is kept when that fails).
    pub idp_metadata_url: Option<String>,
    /// Or a local copy of the IdP's metadata.
    pub idp_metadata_file: Option<PathBuf>,
    #[serde(default = "default_metadata_refresh")]
    pub idp_metadata_refresh: HumanDuration,
    /// doorward's entity id at this IdP. Default: `{public_url}{prefix}/saml/metadata`.
    pub sp_entity_id: Option<String>,
    /// PEM private key (RSA or P-256) and certificate: AuthnRequests and
    /// LogoutRequests are signed with them and the certificate is published
    /// in doorward's metadata.
    pub sp_key: Option<PathBuf>,
    pub sp_certificate: Option<PathBuf>,
    /// NameID format asked for (e.g.
    /// "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"); unset: the IdP's choice.
    pub name_id_format: Option<String>,
    /// Attribute whose first value is the user name (`preferred_username`).
    pub username_attribute: Option<String>,
    /// Attribute whose first value is the email. Unset: `mail`, its OID, or
    /// the `.../claims/emailaddress` URI, whichever is sent.
    pub email_attribute: Option<String>,
    /// Accept IdP-initiated (unsolicited) responses.
    #[serde(default)]
    pub allow_unsolicited: bool,
    /// Clock difference tolerated on NotBefore / NotOnOrAfter.
    #[serde(default = "default_skew")]
    pub clock_skew: HumanDuration,
    /// Largest SAMLResponse accepted (before base64 decoding).
    #[serde(default = "default_max_response")]
    pub max_response_size: ByteSize,
    /// Extra CA (PEM) for fetching metadata from an IdP with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Security warning: accepts SHA-1 signatures (rsa-sha1), which can be
    /// forged with a chosen-prefix collision (and lifts doorward's list of
    /// XML signature algorithms altogether).
    #[serde(default)]
    pub insecure_allow_sha1: bool,
}

fn default_max_response() -> ByteSize {
    ByteSize(256 << 10)
}
