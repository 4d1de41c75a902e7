//! The transmitter as doorward knows it: its SSF configuration metadata
//! (`/.well-known/ssf-configuration`) and its signing keys, read at start
//! and kept fresh by the same loop and backoff as IdP metadata
//! (`providers::refresh`), the last good copy kept while it is down. An
//! unknown `kid` refetches the keys at once, at most every ten seconds, so a
//! key rotation costs one refused SET at worst and a flood of made-up kids
//! costs one fetch.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKey;
use openidconnect::JsonWebKeySet;
use serde::Deserialize;

use crate::idp_http::IdpHttp;

/// How soon an unknown `kid` may fetch the keys again.
const KEYS_REFETCH_MIN: Duration = Duration::from_secs(10);

/// The transmitter configuration metadata (SSF 1.0 §7.1), the members
/// doorward uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TransmitterMetadata {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub delivery_methods_supported: Vec<String>,
    pub configuration_endpoint: Option<String>,
    pub status_endpoint: Option<String>,
    pub verification_endpoint: Option<String>,
}

pub type Jwks = JsonWebKeySet<CoreJsonWebKey>;

#[derive(Debug, thiserror::Error)]
pub enum TransmitterError {
    #[error("{url}: {why}")]
    Fetch { url: String, why: String },
    #[error("the transmitter metadata is not usable: {0}")]
    BadMetadata(String),
}

/// One transmitter's metadata and keys.
pub struct Transmitter {
    pub issuer: String,
    http: IdpHttp,
    allow_http: bool,
    metadata: RwLock<Option<Arc<TransmitterMetadata>>>,
    keys: RwLock<Arc<Jwks>>,
    keys_fetched: Mutex<Option<Instant>>,
}

impl Transmitter {
    pub fn new(issuer: &str, http: IdpHttp, allow_http: bool) -> Self {
        Self {
            issuer: issuer.to_string(),
            http,
            allow_http,
            metadata: RwLock::new(None),
            keys: RwLock::new(Arc::new(JsonWebKeySet::new(Vec::new()))),
            keys_fetched: Mutex::new(None),
        }
    }

    /// The metadata's URL: SSF 1.0 §7.2 puts the well-known segment
    /// between the host and the issuer's path.
    pub fn metadata_url(&self) -> String {
        match url::Url::parse(&self.issuer) {
            Ok(url) if url.path() != "/" && !url.path().is_empty() => {
                let origin = url.origin().ascii_serialization();
                format!(
                    "{origin}/.well-known/ssf-configuration{}",
                    url.path().trim_end_matches('/')
                )
            }
            _ => format!("{}/.well-known/ssf-configuration", self.issuer.trim_end_matches('/')),
        }
    }

    pub fn metadata(&self) -> Option<Arc<TransmitterMetadata>> {
        self.metadata.read().ok().and_then(|m| m.clone())
    }

    pub fn keys(&self) -> Arc<Jwks> {
        self.keys
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|_| Arc::new(JsonWebKeySet::new(Vec::new())))
    }

    /// Reads the metadata and the keys again; on success, how long the
    /// metadata may be cached if the transmitter said.
    pub async fn refresh(&self) -> Result<Option<Duration>, TransmitterError> {
        let url = self.metadata_url();
        let (body, max_age) = self.get("ssf_configuration", &url).await?;
        let metadata: TransmitterMetadata =
            serde_json::from_slice(&body).map_err(|e| TransmitterError::BadMetadata(format!("{url}: {e}")))?;
        if metadata.issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(TransmitterError::BadMetadata(format!(
                "its issuer `{}` is not the configured `{}`",
                metadata.issuer, self.issuer
            )));
        }
        for endpoint in [
            &metadata.jwks_uri,
            &metadata.configuration_endpoint,
            &metadata.status_endpoint,
            &metadata.verification_endpoint,
        ]
        .into_iter()
        .flatten()
        {
            self.check_url(endpoint)?;
        }
        let metadata = Arc::new(metadata);
        if let Ok(mut slot) = self.metadata.write() {
            *slot = Some(Arc::clone(&metadata));
        }
        self.fetch_keys(&metadata).await?;
        Ok(max_age)
    }

    /// Fetches the keys now unless an unknown `kid` fetched them in the
    /// last ten seconds: true if they were. Only these fetches count (not
    /// the scheduled refresh), so a rotation just after a refresh or a
    /// start is still picked up by the first SET signed with the new key.
    pub async fn refetch_keys(&self) -> bool {
        {
            let Ok(mut last) = self.keys_fetched.lock() else {
                return false;
            };
            if last.is_some_and(|at| at.elapsed() < KEYS_REFETCH_MIN) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let Some(metadata) = self.metadata() else {
            return false;
        };
        match self.fetch_keys(&metadata).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(transmitter = %self.issuer, error = %e, "the transmitter's keys could not be read");
                false
            }
        }
    }

    async fn fetch_keys(&self, metadata: &TransmitterMetadata) -> Result<(), TransmitterError> {
        let url = metadata
            .jwks_uri
            .as_deref()
            .ok_or_else(|| TransmitterError::BadMetadata("no jwks_uri: SETs could not be verified".into()))?;
        let (body, _) = self.get("ssf_jwks", url).await?;
        let keys: Jwks =
            serde_json::from_slice(&body).map_err(|e| TransmitterError::BadMetadata(format!("{url}: {e}")))?;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::new(keys);
        }
        Ok(())
    }

    /// Every URL doorward calls must be https (http on loopback, or when
    /// the operator allowed it).
    fn check_url(&self, url: &str) -> Result<(), TransmitterError> {
        let parsed = url::Url::parse(url).map_err(|e| TransmitterError::BadMetadata(format!("`{url}`: {e}")))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if loopback || self.allow_http => Ok(()),
            _ => Err(TransmitterError::BadMetadata(format!("`{url}` must use https"))),
        }
    }

    /// One GET with its `Cache-Control: max-age`.
    async fn get(&self, endpoint: &'static str, url: &str) -> Result<(Vec<u8>, Option<Duration>), TransmitterError> {
        let fetch = |why: String| TransmitterError::Fetch {
            url: url.to_string(),
            why,
        };
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| fetch(e.to_string()))?;
        let response = self
            .http
            .send(endpoint, request)
            .await
            .map_err(|e| fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fetch(format!("answered {}", response.status())));
        }
        let max_age = crate::idp_http::max_age(response.headers());
        Ok((response.into_body(), max_age))
    }

    /// The client, for stream management and polling.
    pub fn http(&self) -> &IdpHttp {
        &self.http
    }
}
