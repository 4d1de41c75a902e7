//! Building the configured providers from the config, each with its own
//! HTTP client for its IdP; at a reload, providers whose config did not
//! change are kept (with their fetched metadata and keys) instead.

use std::sync::Arc;
use std::time::Duration;

use super::Provider;
use crate::clock::Clock;
use crate::config::{Config, ProviderConfig};
use crate::idp_http::IdpHttp;
use crate::metrics::IdpMetrics;
use crate::oidc::{OidcError, OidcProvider};
use crate::saml::{SamlProvider, SamlSetupError, SpUrls};
use crate::tls::TlsError;

/// How long one call to an IdP may take.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a provider could not be built (all of it is in the config).
#[derive(Debug, thiserror::Error)]
pub enum ProviderSetupError {
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Saml(#[from] SamlSetupError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The configured providers: `kept(name)` where it has one (a reload
/// reusing a provider whose config did not change), built otherwise
/// (those are also returned alone, for their metadata refresh to start).
/// `base` and `prefix` are `public_url` and the internal prefix, for the
/// URLs a provider hands to its IdP.
pub fn build_providers(
    config: &Config,
    base: &str,
    prefix: &str,
    clock: &Clock,
    idp: &IdpMetrics,
    kept: impl Fn(&str) -> Option<Provider>,
) -> Result<(Vec<Provider>, Vec<Provider>), ProviderSetupError> {
    let mut providers = Vec::new();
    let mut fresh = Vec::new();
    for provider in &config.providers {
        if let Some(kept) = kept(provider.name()) {
            providers.push(kept);
            continue;
        }
        let built = match provider {
            ProviderConfig::Oidc(oidc) => {
                let tls = crate::tls::client_config(oidc.ca_file.as_deref())?;
                let http = IdpHttp::new(tls, IDP_TIMEOUT).observed(idp.clone(), &oidc.name);
                Provider::Oidc(Arc::new(OidcProvider::new(oidc, http, clock.clone())?))
            }
            ProviderConfig::Saml(saml) => {
                let tls = crate::tls::client_config(saml.ca_file.as_deref())?;
                let http = IdpHttp::new(tls, IDP_TIMEOUT).observed(idp.clone(), &saml.name);
                let urls = SpUrls { base, prefix };
                Provider::Saml(Arc::new(SamlProvider::new(saml, urls, http, clock.clone())?))
            }
        };
        fresh.push(built.clone());
        providers.push(built);
    }
    Ok((providers, fresh))
}
