//! Gives memory back to the OS after many connections have closed.
//!
//! Each HTTP/1.1 connection that is served holds about 20–40 KiB (hyper's
//! read and write buffers, our per-connection state). glibc frees that into
//! its per-thread arenas but returns to the OS only what sits at the top of
//! a heap, so after a flood of 2,000 keep-alive connections RSS stayed at
//! 3x its level before, for good. A sidecar under a memory limit cannot
//! keep that: trimming put it back within 1.1x (README, "Resource limits
//! and floods").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the connection counts are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Trim once at least this many connections have closed since the last
/// trim: a trim walks every arena (a few ms at 100 MiB), so not on every
/// close, but often enough that a flood's memory is back within seconds.
const TRIM_AFTER_CLOSED: usize = 512;

/// How many of the listener's connections have closed.
#[derive(Debug, Default)]
pub struct ConnCounts {
    closed: AtomicUsize,
}

impl ConnCounts {
    /// A guard that counts the connection closed when it drops.
    pub fn open(self: &Arc<Self>) -> ClosedOnDrop {
        ClosedOnDrop(Arc::clone(self))
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }
}

pub struct ClosedOnDrop(Arc<ConnCounts>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs for ever: trims the allocator whenever enough connections have
/// closed since the last trim.
pub async fn trim_after_closes(counts: Arc<ConnCounts>) {
    let mut closed_at_last_trim = counts.closed();
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let closed = counts.closed();
        if should_trim(closed_at_last_trim, closed) {
            // Off the async workers: it takes each arena's lock in turn.
            let released = tokio::task::spawn_blocking(doorward_malloc_trim::trim)
                .await
                .unwrap_or(false);
            tracing::debug!(
                closed_since = closed - closed_at_last_trim,
                released,
                "gave freed connection memory back to the OS"
            );
            closed_at_last_trim = closed;
        }
    }
}

fn should_trim(closed_at_last_trim: usize, closed: usize) -> bool {
    closed.saturating_sub(closed_at_last_trim) >= TRIM_AFTER_CLOSED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_enough_closes() {
        assert!(!should_trim(0, TRIM_AFTER_CLOSED - 1));
        assert!(should_trim(0, TRIM_AFTER_CLOSED));
        assert!(!should_trim(1000, 1000 + TRIM_AFTER_CLOSED - 1));
    }

    #[test]
    fn a_connection_counts_as_closed_when_its_guard_drops() {
        let counts = Arc::new(ConnCounts::default());
        let guard = counts.open();
        assert_eq!(counts.closed(), 0);
        drop(guard);
        assert_eq!(counts.closed(), 1);
    }
}
