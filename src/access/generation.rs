//! The access generation: a counter every identity change bumps, readable
//! with one atomic load on the request path, and a watch that wakes the
//! one task that follows it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// Shared by everything in the process that derives access from identity.
#[derive(Clone)]
pub struct Generation {
    inner: Arc<Inner>,
}

struct Inner {
    /// Bumped by every change: sessions, directory, policy, notices.
    access: AtomicU64,
    /// Bumped only by changes that can alter a session-less verdict (the
    /// directory, a reload, the notice channel): bearer verdicts are
    /// checked against this one, so one user's logout does not make every
    /// other bearer token be verified again.
    directory: AtomicU64,
    wake: watch::Sender<u64>,
}

impl Default for Generation {
    fn default() -> Self {
        Self::new()
    }
}

impl Generation {
    pub fn new() -> Self {
        let (wake, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                access: AtomicU64::new(0),
                directory: AtomicU64::new(0),
                wake,
            }),
        }
    }

    /// The access generation now.
    pub fn current(&self) -> u64 {
        self.inner.access.load(Ordering::Acquire)
    }

    /// The directory generation now (bearer verdicts).
    pub fn directory(&self) -> u64 {
        self.inner.directory.load(Ordering::Acquire)
    }

    /// A session or its record changed: whatever was admitted may not be.
    pub fn bump(&self) {
        let now = self.inner.access.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.wake.send_replace(now);
    }

    /// Something that every verdict may depend on changed (the directory,
    /// the policy, whether notices are heard): bearer verdicts too.
    pub fn bump_directory(&self) {
        self.inner.directory.fetch_add(1, Ordering::AcqRel);
        self.bump();
    }

    /// Wakes on each bump (several bumps in a row may wake once).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bumps_count_and_wake() {
        let generation = Generation::new();
        let mut woken = generation.subscribe();
        generation.bump();
        assert_eq!((generation.current(), generation.directory()), (1, 0));
        generation.bump_directory();
        assert_eq!((generation.current(), generation.directory()), (2, 1));
        assert!(woken.has_changed().unwrap_or(false));
        woken.borrow_and_update();
        assert!(!woken.has_changed().unwrap_or(true));
    }
}
