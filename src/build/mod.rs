//! What `doorward check` and `doorward serve` both make from a config
//! before anything touches the network: the identity policies, the session
//! key ring, the signing keys. The same constructors run in both, so a
//! config that checks is a config that starts ("check = serve"); the config
//! module itself stays free of runtime code.

pub mod gateway;

use std::path::Path;

use crate::assertion::client_certificate::{ClientCertificate, ClientCertificateError};
use crate::assertion::client_key::{ClientKey, ClientKeyError};
use crate::assertion::keys::SigningKey;
use crate::assertion::AssertionSigner;
use crate::config::{self, Config, ConfigError};
use crate::identity::IdentityEngine;
use crate::keyring::KeyRing;
use crate::respond::Pages;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("headers.signing_keys: {0}")]
    Signing(String),
    #[error("{0}")]
    Pages(String),
}

/// Problems found by building what the config describes, as (key path,
/// message) for the config loader to place in the file.
pub fn problems(config: &Config) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Err(problems) = IdentityEngine::from_config(config) {
        found.extend(problems);
    }
    for (i, path) in config.headers.signing_keys.iter().enumerate() {
        if let Err(e) = SigningKey::from_file(path) {
            found.push((format!("headers.signing_keys[{i}]"), e.to_string()));
        }
    }
    for (i, provider) in config.providers.iter().enumerate() {
        let Some(oidc) = provider.oidc() else { continue };
        let Some(path) = oidc.client_key.as_deref() else {
            continue;
        };
        let key = match ClientKey::from_file(path) {
            // A file that is not there is reported by the config's checks.
            Err(ClientKeyError::Read { .. }) if !path.exists() => continue,
            Err(e) => {
                found.push((format!("provider[{i}].client_key"), e.to_string()));
                continue;
            }
            Ok(key) => key,
        };
        let Some(path) = oidc.client_certificate.as_deref() else {
            continue;
        };
        match ClientCertificate::from_file(path, &key) {
            Err(ClientCertificateError::Read { .. }) if !path.exists() => {}
            Err(e) => found.push((format!("provider[{i}].client_certificate"), e.to_string())),
            Ok(_) => {}
        }
    }
    if let Err(errors) = Pages::from_config(config) {
        found.extend(errors.into_iter().map(|e| (e.key.to_string(), e.message)));
    }
    found.extend(crate::audit::settings::problems(config));
    let secrets: Result<Vec<_>, _> = config.session.keys.iter().map(|k| k.resolve()).collect();
    if let Ok(secrets) = secrets {
        if !secrets.is_empty() {
            if let Err(e) = KeyRing::new(&secrets) {
                found.push(("session.keys".to_string(), e.to_string()));
            }
        }
    }
    found
}

/// doorward's pages: the templates and logo `[ui]` names, or the built-in ones.
pub fn pages(config: &Config) -> Result<Pages, BuildError> {
    Pages::from_config(config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        BuildError::Pages(lines.join("; "))
    })
}

/// Loads a config file with every check `serve` would make.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    config::load_file_with(path, &problems)
}

/// Checks config text read from `file` exactly as [`load`] does (a reload
/// reads the file itself, to compare it with the running one).
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    config::parse_str_with(text, file, &problems)
}

/// The assertion signer: configured keys, or one made now (with a
/// warning: assertions then only verify against this process's JWKS).
pub fn signer(config: &Config) -> Result<AssertionSigner, BuildError> {
    let mut keys = Vec::new();
    for path in &config.headers.signing_keys {
        keys.push(SigningKey::from_file(path).map_err(|e| BuildError::Signing(e.to_string()))?);
    }
    if keys.is_empty() {
        if !config.providers.is_empty() {
            tracing::warn!(
                "no [headers] signing_keys: signing assertions with a key made at start; \
                 set one (doorward keygen --signing) so assertions survive restarts and replicas"
            );
        }
        keys.push(SigningKey::generate());
    }
    let issuer = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| "doorward".to_string());
    AssertionSigner::new(keys, issuer, config.headers.assertion_ttl.0, &config.headers.assertion)
        .ok_or_else(|| BuildError::Signing("no usable signing key".into()))
}

/// One warning line per setting that weakens a default.
pub fn warn_weakened(config: &Config) {
    for (key, why) in config::weakened(config) {
        tracing::warn!(setting = %key, "security: {why}");
        crate::audit!(crate::audit::Kind::Weakened, key = %key, reason = %why);
    }
}
