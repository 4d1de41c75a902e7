//! `doorward sessions list|revoke`, run against the configured store
//! (SQLite or PostgreSQL) by an operator, beside or away from the running
//! doorwards. A revocation here is the store's: PostgreSQL notifies every
//! replica, SQLite leaves a notice the running process polls for, so each
//! forgets the sessions within a second.

use super::{describe, SessionLine, TEXT_HEADER};
use crate::config::StoreConfig;
use crate::store::{SessionSelector, SessionStore, Store, StoreOptions};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub enum SessionsCommand {
    /// Print the sessions named (all, with an empty selector).
    List { selector: SessionSelector, json: bool },
    /// End the sessions named (an empty selector is refused).
    Revoke { selector: SessionSelector },
}

/// Runs `command` against the store `[store]` names: what to print, or why
/// it failed.
pub async fn run(store: &StoreConfig, command: SessionsCommand) -> Result<String, String> {
    let (SessionsCommand::List { selector, .. } | SessionsCommand::Revoke { selector }) = &command;
    if let Some(problem) = selector.problem() {
        return Err(problem.to_string());
    }
    if matches!(command, SessionsCommand::Revoke { .. }) && selector.is_empty() {
        return Err("name the sessions to end: --user, --session or --provider".into());
    }
    let store = open(store).await?;
    match command {
        SessionsCommand::List { selector, json } => {
            let records = store.list_sessions(&selector).await.map_err(|e| e.to_string())?;
            let lines: Vec<SessionLine> = records.iter().map(SessionLine::of).collect();
            if json {
                return serde_json::to_string_pretty(&lines).map_err(|e| e.to_string());
            }
            let mut out = String::from(TEXT_HEADER);
            for line in &lines {
                out.push('\n');
                out.push_str(&line.text());
            }
            Ok(out)
        }
        SessionsCommand::Revoke { selector } => {
            let ended = store.revoke_sessions(&selector).await.map_err(|e| e.to_string())?;
            tracing::info!(by = "cli", what = %describe(&selector), revoked = ended.len(), "sessions revoked by hand");
            crate::audit!(
                crate::audit::Kind::SessionEnded,
                by = "operator",
                reason = %format!("cli: {}", describe(&selector)),
                count = ended.len(),
            );
            Ok(format!(
                "revoked {} session{}",
                ended.len(),
                if ended.len() == 1 { "" } else { "s" }
            ))
        }
    }
}

/// The store as `serve` opens it (URL, password, pool size).
async fn open(config: &StoreConfig) -> Result<Store, String> {
    let password = match &config.password {
        Some(source) => Some(source.resolve().map_err(|e| format!("store.password: {e}"))?),
        None => None,
    };
    let options = StoreOptions {
        password,
        max_connections: config.max_connections,
    };
    Store::open(&config.url, &options)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))
}
