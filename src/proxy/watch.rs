//! Long-lived admissions follow identity changes. An upgrade tunnel or an
//! open-ended response body is registered (in [`crate::access::Registry`])
//! with what its admission needs to be run again; one watcher task per
//! process re-runs every registered admission through the same recognise
//! and policy path as a request, against the gateway current at the time
//! (so a reload, a removed provider, a directory or session change all
//! count), whenever the access generation moves, and cancels those no
//! longer admitted.
//!
//! Nothing here runs for a response with a modest Content-Length and no
//! upgrade: the registry is touched only by long-lived things.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use http::header::CONTENT_LENGTH;
use http::HeaderMap;

use super::policy;
use super::Gateway;
use crate::access::{Credentials, Entry, Generation, Registration, Registry};
use crate::respond::body::PooledBody;

/// A body longer than this is a long response (a download), watched like
/// one without a length.
const LONG_BODY: u64 = 1024 * 1024;

/// What a request was admitted with, kept until its response shows
/// whether it is long-lived. Borrowed: nothing is copied unless it is.
pub struct Admission<'a> {
    pub credentials: Credentials,
    pub host: Option<&'a str>,
    pub path: &'a str,
    /// The access generation read before the caller was recognised.
    pub admitted_under: u64,
}

impl Admission<'_> {
    pub fn register(self, registry: &Registry) -> Registration {
        registry.register(
            self.credentials,
            self.host.map(str::to_string),
            self.path.to_string(),
            self.admitted_under,
        )
    }
}

/// Whether a response body is open-ended: no length (SSE, chunked
/// streams), or a long one.
pub fn open_ended(headers: &HeaderMap, body: &PooledBody) -> bool {
    use http_body::Body;
    if body.is_end_stream() {
        return false;
    }
    match headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()) {
        Some(length) => length.trim().parse::<u64>().map_or(true, |n| n > LONG_BODY),
        None => true,
    }
}

/// Starts the process's one watcher: on each generation change, every open
/// long-lived admission is checked against the current gateway. It ends
/// when the gateway is gone.
pub fn spawn_watcher(gateway: Weak<ArcSwap<Gateway>>, generation: &Generation) {
    let mut changes = generation.subscribe();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            changes.borrow_and_update();
            let Some(shared) = gateway.upgrade() else {
                return;
            };
            let current = shared.load_full();
            drop(shared);
            recheck(&current).await;
        }
    });
}

/// Checks every registered admission once; cancels the refused ones.
async fn recheck(gateway: &Gateway) {
    let entries = gateway.access.snapshot();
    if entries.is_empty() {
        return;
    }
    let mut ended = 0usize;
    for entry in entries.iter().filter(|e| !e.is_cancelled()) {
        if !still_admitted(gateway, entry).await {
            entry.cancel();
            ended += 1;
        }
    }
    if ended > 0 {
        tracing::info!(
            ended,
            open = entries.len(),
            "identity changed: long-lived connections ended"
        );
    }
}

/// The admission again, as a request with these credentials to this host
/// and path would get it now. Only an admitted caller passes: the identity
/// this connection carries is no longer vouched for otherwise, and a store
/// that cannot say is a no (fail closed).
async fn still_admitted(gateway: &Gateway, entry: &Arc<Entry>) -> bool {
    let Some(route) = gateway.routes.find(entry.host.as_deref(), &entry.path) else {
        return false;
    };
    let recognised = match &gateway.auth {
        Some(auth) => {
            let bearer = route.rules.bearer && !route.is_public(&entry.path);
            auth.recognise(&entry.credentials.headers(), bearer).await
        }
        None => Ok(None),
    };
    if let Err(e) = &recognised {
        tracing::warn!(error = %e, "cannot re-check a long-lived connection; ending it");
    }
    let now = gateway.auth.as_ref().map_or(0, |auth| auth.clock().now());
    matches!(policy::decide(route, &entry.path, recognised, now), Ok(passage) if passage.admitted().is_some())
}
