//! Live config reload. SIGHUP, or the opt-in file watch
//! (`[server] reload_watch`), re-reads the config file, checks it exactly
//! as `doorward check` does, and swaps the request path's [`Gateway`]:
//! routes, policy, identity mapping, pages and key rings change without a
//! dropped connection or session. A config that fails the checks is
//! refused with one log line, and the running one stays.
//!
//! Each request loads the current gateway once, when it starts, and keeps
//! it to the end: in-flight requests finish on the config they started
//! with. What must outlive a reload is carried over, not rebuilt: the
//! session manager (store, moka cache; its key ring and mapping are
//! swapped), the metrics registry, the readiness state, and providers
//! whose config did not change (their fetched metadata and keys). The
//! connection counts live in the server, which a reload does not touch.
//!
//! What changed between two files, and which changes wait for a restart,
//! is worked out in `diff`.

mod diff;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::auth::{AuthContext, AuthSwap};
use crate::config::Config;
use crate::proxy::Gateway;
pub use diff::diff;
use diff::{pin_restart_only, raw_table, restart_only, server_key, unchanged_providers};

/// The request path's current gateway: one atomic load per request.
pub type SharedGateway = Arc<ArcSwap<Gateway>>;

/// How often the file watch looks at the config file.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What one reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reloaded,
    /// The file says what the running config says.
    Unchanged,
    /// The new config failed a check or could not be built; the running
    /// one stays.
    Refused,
}

/// The config a reload compares with and keeps what must not change from.
struct Running {
    config: Config,
    /// The file as last applied: what a reload reports as changed.
    applied: toml::Table,
    /// The file as at start: restart-only settings are compared with this,
    /// so a pending one is named again at every reload until the restart.
    started: toml::Table,
    /// Of the bytes last read, so the watch does not retry a refused file.
    digest: [u8; 32],
}

/// Re-reads the config file and swaps the gateway.
pub struct Reloader {
    path: PathBuf,
    gateway: SharedGateway,
    /// Also serialises reloads (a SIGHUP during a watch-triggered one).
    running: tokio::sync::Mutex<Running>,
}

impl Reloader {
    /// `config` is the running config, as loaded from `path` at start.
    pub fn new(path: PathBuf, config: Config, gateway: SharedGateway) -> Self {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let raw = raw_table(&bytes);
        Self {
            path,
            gateway,
            running: tokio::sync::Mutex::new(Running {
                config,
                applied: raw.clone(),
                started: raw,
                digest: Sha256::digest(&bytes).into(),
            }),
        }
    }

    /// Reloads on every SIGHUP, for the process's life. The handler is
    /// installed before this returns, so a SIGHUP sent after it no longer
    /// ends the process (its default action).
    #[cfg(unix)]
    pub fn spawn_sighup(self: &Arc<Self>) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                this.reload("SIGHUP").await;
            }
        });
        Ok(())
    }

    /// Polls the file every two seconds and reloads when its bytes change.
    /// A content hash, not the mtime alone: an edit within the same mtime
    /// tick (coarse filesystems) is still seen, and a `touch` or a
    /// ConfigMap's symlink swap to identical bytes is not a reload. Reading
    /// a config file every two seconds costs nothing, so no notify crate.
    pub fn spawn_watch(self: &Arc<Self>) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let Some(this) = this.upgrade() else {
                    return;
                };
                let Ok(bytes) = tokio::fs::read(&this.path).await else {
                    // Mid-replace or gone: the next poll looks again.
                    continue;
                };
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                if this.running.lock().await.digest != digest {
                    this.reload("file watch").await;
                }
            }
        });
    }

    /// Reads, checks and applies the config file; logs what happened.
    pub async fn reload(&self, trigger: &'static str) -> Outcome {
        let mut running = self.running.lock().await;
        let file = self.path.display().to_string();
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(e) => return self.refuse(trigger, &format!("cannot read config file {file}: {e}")),
        };
        running.digest = Sha256::digest(&bytes).into();
        let text = String::from_utf8_lossy(&bytes);
        // The same checks as `doorward check`, on the same text.
        let mut config = match crate::build::parse(&text, &file) {
            Ok(config) => config,
            Err(e) => return self.refuse(trigger, &e.to_string()),
        };
        let raw = raw_table(&bytes);
        let restart: Vec<String> = diff(&running.started, &raw)
            .into_iter()
            .filter(|k| restart_only(k))
            .collect();
        let changed: Vec<String> = diff(&running.applied, &raw)
            .into_iter()
            .filter(|k| !restart_only(k))
            .collect();
        if !restart.is_empty() {
            tracing::warn!(
                trigger,
                keys = %restart.join(", "),
                "config reload: these settings need a restart; they keep their running values until then"
            );
        }
        if changed.is_empty() {
            tracing::info!(trigger, "config reload: nothing to apply");
            running.applied = raw;
            return Outcome::Unchanged;
        }
        let current = self.gateway.load_full();
        pin_restart_only(&mut config, &running.config);
        if current.auth().is_none() && !config.providers.is_empty() {
            // The session store opens at start, with the first provider.
            tracing::warn!(
                trigger,
                keys = "provider",
                "config reload: the first provider needs a restart; the rest is applied without it"
            );
            config.providers.clear();
        }
        let unchanged = unchanged_providers(&running.applied, &raw);
        let keep_signer = config.headers.signing_keys.is_empty()
            && running.applied.get("headers") == raw.get("headers")
            && server_key(&running.applied, "public_url") == server_key(&raw, "public_url");
        match rebuild(&config, &current, &unchanged, keep_signer) {
            Ok((gateway, swap)) => {
                // The shared session state changes only now that all of
                // the new config was built.
                if let Some(swap) = swap {
                    swap.apply();
                }
                let generation = gateway.access().generation().clone();
                // The new receivers read their transmitters afresh; the
                // old ones' loops end with them.
                if let Some(signals) = &gateway.signals {
                    signals.start();
                }
                self.gateway.store(Arc::new(gateway));
                crate::auth::end_orphaned_sessions(self.gateway.load_full().auth()).await;
                // Now that the new policy is in place: whatever it refuses
                // is ended, tunnels and long responses included.
                generation.bump_directory();
            }
            Err(e) => return self.refuse(trigger, &e),
        }
        crate::build::warn_weakened(&config);
        current.metrics().config_reload("success");
        tracing::info!(trigger, changed = %changed.join(", "), "config reloaded");
        crate::audit!(crate::audit::Kind::ConfigReloaded, trigger, changed = %changed.join(", "));
        running.config = config;
        running.applied = raw;
        Outcome::Reloaded
    }

    /// Logs a refused reload (one line, with each problem's file, line and
    /// key as `doorward check` gives them) and counts it.
    fn refuse(&self, trigger: &'static str, error: &str) -> Outcome {
        let error = redact_values(error).replace('\n', "; ");
        tracing::error!(trigger, %error, "config reload refused; the running config stays");
        crate::audit!(crate::audit::Kind::ConfigRefused, trigger, reason = %error);
        self.gateway.load().metrics().config_reload("refused");
        Outcome::Refused
    }
}

/// Takes out the values serde quotes in its type errors (`invalid type:
/// string "..."`): a config line may hold a secret, and this goes to the
/// log (`check` prints the same problems to its own stderr, unredacted).
fn redact_values(message: &str) -> String {
    static QUOTED: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#"string "(?:[^"\\]|\\.)*""#).ok());
    match QUOTED.as_ref() {
        Some(quoted) => quoted.replace_all(message, "string [redacted]").into_owned(),
        // Cannot happen (a constant pattern); say nothing rather than leak.
        None => "the new config failed its checks (details withheld)".to_string(),
    }
}

/// Builds the new gateway beside the running one, keeping what must
/// survive. Nothing shared changes here: the returned swap does that.
fn rebuild(
    config: &Config,
    current: &Gateway,
    unchanged: &[String],
    keep_signer: bool,
) -> Result<(Gateway, Option<AuthSwap>), String> {
    let clock = current.clock.clone();
    let metrics = current.shared_metrics();
    // Without configured keys the signing key was made at start; making
    // another at each reload would orphan every verifier's copy.
    let signer = if keep_signer {
        Arc::clone(&current.signer)
    } else {
        Arc::new(crate::build::signer(config).map_err(|e| e.to_string())?)
    };
    let pages = Arc::new(crate::build::pages(config).map_err(|e| e.to_string())?);
    let ctx = AuthContext {
        signer: Arc::clone(&signer),
        pages: Arc::clone(&pages),
        metrics: metrics.auth().clone(),
        clock: clock.clone(),
    };
    // Without providers, no login machinery (only public paths pass); the
    // caller made sure there is a running one to reconfigure otherwise.
    let (auth, swap) = match current.auth() {
        Some(running) if !config.providers.is_empty() => {
            let (auth, swap) = running.reconfigure(config, ctx, unchanged).map_err(|e| e.to_string())?;
            (Some(Arc::new(auth)), Some(swap))
        }
        _ => (None, None),
    };
    let mut gateway = Gateway::new(config, metrics, auth, signer, pages, clock).map_err(|e| e.to_string())?;
    gateway.readiness = Arc::clone(&current.readiness);
    gateway.access = Arc::clone(current.access());
    Ok((gateway, swap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_values_do_not_reach_the_log() {
        let message = r#"a.toml:11:8: session.keys: invalid type: string "s3cr\"et", expected a sequence"#;
        assert_eq!(
            redact_values(message),
            "a.toml:11:8: session.keys: invalid type: string [redacted], expected a sequence"
        );
    }
}
