//! The one loop that keeps a provider's metadata fresh for its life: on
//! schedule after a success, sooner (with backoff) after a failure, the
//! last good copy kept in use meanwhile. Each protocol says what one
//! refresh is ([`Refresh`]); the loop, its schedule and its backoff are
//! written here once.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::oidc::{OidcError, OidcProvider};
use crate::saml::{SamlError, SamlProvider};

/// The shortest scheduled wait an IdP's `Cache-Control: max-age` may ask
/// for (a configured interval below it still wins).
const REFRESH_MIN: Duration = Duration::from_secs(300);
/// Retry delay after a failed refresh, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// One refresh of a protocol's metadata, as the loop sees it.
pub(crate) trait Refresh: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;
    /// The warning logged when a refresh fails.
    const FAILED: &'static str;
    fn provider_name(&self) -> &str;
    /// The configured (longest) wait after a success.
    fn interval(&self) -> Duration;
    /// One refresh; on success, how long the IdP lets its answer be cached,
    /// if it said.
    fn refresh_once(&self) -> impl Future<Output = Result<Option<Duration>, Self::Error>> + Send;
}

impl Refresh for OidcProvider {
    type Error = OidcError;
    const FAILED: &'static str = "identity provider metadata could not be refreshed; keeping the last good copy";

    fn provider_name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.metadata_refresh()
    }

    async fn refresh_once(&self) -> Result<Option<Duration>, OidcError> {
        self.refresh_metadata().await
    }
}

impl Refresh for SamlProvider {
    type Error = SamlError;
    const FAILED: &'static str = "SAML IdP metadata could not be read; keeping the last good copy";

    fn provider_name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.metadata_refresh()
    }

    async fn refresh_once(&self) -> Result<Option<Duration>, SamlError> {
        self.refresh_metadata().await.map(|()| None)
    }
}

/// The wait after a success: the configured interval, which the IdP's
/// max-age may only shorten, and not below five minutes.
fn next_wait(interval: Duration, max_age: Option<Duration>) -> Duration {
    max_age.map_or(interval, |age| age.clamp(REFRESH_MIN.min(interval), interval))
}

/// The wait after a failure, and the one after that.
fn backoff(retry: Duration) -> (Duration, Duration) {
    (retry, (retry * 2).min(RETRY_MAX))
}

/// Starts the refresh loop. It holds the provider only weakly between
/// rounds, so it ends once the provider is dropped (a reload replaced it).
pub(crate) fn spawn<P: Refresh>(provider: &Arc<P>) {
    let provider: Weak<P> = Arc::downgrade(provider);
    tokio::spawn(async move {
        let mut retry = RETRY_FIRST;
        loop {
            let Some(this) = provider.upgrade() else {
                return;
            };
            let wait = match this.refresh_once().await {
                Ok(max_age) => {
                    retry = RETRY_FIRST;
                    next_wait(this.interval(), max_age)
                }
                Err(e) => {
                    tracing::warn!(provider = %this.provider_name(), error = %e, retry_in = ?retry, "{}", P::FAILED);
                    let (wait, next) = backoff(retry);
                    retry = next;
                    wait
                }
            };
            drop(this);
            tokio::time::sleep(wait).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn max_age_only_shortens_the_interval_and_not_below_five_minutes() {
        let hour = 60 * MINUTE;
        assert_eq!(next_wait(hour, None), hour);
        assert_eq!(next_wait(hour, Some(10 * MINUTE)), 10 * MINUTE);
        assert_eq!(next_wait(hour, Some(2 * hour)), hour, "max-age never lengthens");
        assert_eq!(next_wait(hour, Some(MINUTE)), 5 * MINUTE, "nor goes below five minutes");
        assert_eq!(
            next_wait(2 * MINUTE, Some(MINUTE)),
            2 * MINUTE,
            "a shorter configured interval wins"
        );
    }

    #[test]
    fn failures_back_off_doubling_up_to_five_minutes() {
        let mut retry = RETRY_FIRST;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (wait, next) = backoff(retry);
            waits.push(wait.as_secs());
            retry = next;
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
