//! The one clock everything time-dependent reads: session expiry, token
//! checks, assertion lifetimes, replay windows. The system clock in
//! production; a hand-set clock in tests, so expiry is tested by moving
//! time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system or set by a test.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock shared by clones.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until moved.
    pub fn manual(start: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start))),
        }
    }

    /// A manual clock starting at the current system time.
    pub fn manual_from_now() -> Self {
        Self::manual(system_now())
    }

    pub fn now(&self) -> i64 {
        match &self.manual {
            None => system_now(),
            Some(at) => at.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, secs: i64) {
        if let Some(at) = &self.manual {
            at.fetch_add(secs, Ordering::Relaxed);
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_told_and_share_their_time() {
        let clock = Clock::manual(1_000);
        let copy = clock.clone();
        clock.advance(30);
        assert_eq!(copy.now(), 1_030);
        let system = Clock::system();
        system.advance(1_000_000);
        assert!((system.now() - system_now()).abs() <= 1);
    }
}
