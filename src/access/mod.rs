//! Access generations: how a change of identity reaches what was admitted
//! before it. Whenever this process learns that an identity fact changed
//! (a session ended or changed, a directory change, a reload, the notice
//! channel lost or back), it bumps the [`Generation`]. Cached verdicts
//! carry the generation they were derived under; long-lived admissions
//! (upgrade tunnels, open-ended response bodies) sit in the [`Registry`],
//! and one watcher per process (`proxy::watch`) re-runs their admission on
//! every bump and cancels those no longer admitted.
//!
//! This module is small and shared: it knows no sessions, requests or
//! config, only counters, credentials and cancellation.

mod generation;
pub mod posture;
mod registry;

pub use generation::Generation;
pub use posture::{Posture, PostureRule};
pub use registry::{Cancelled, Credentials, Entry, Registration, Registry};
