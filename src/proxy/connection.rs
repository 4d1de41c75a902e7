//! What the request path knows of the connection a request came in on
//! (which listener, the peer, TLS, its activity), and what it learns of
//! each request for the access log and metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use super::conn_io::ConnActivity;
use super::route::Route;
use crate::metrics::Metrics;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The main one: routes, and doorward's own endpoints.
    Main,
    /// `[server] metrics_listen`: operational endpoints only.
    Metrics,
    /// `[scim] listen`: the SCIM endpoints only.
    Scim,
    /// `[admin] listen`: the operators' admin API only.
    Admin,
}

/// What a client connection tells the request path.
#[derive(Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    pub activity: Arc<ConnActivity>,
    pub listener: Listener,
}

/// What the request path learned, for the access log and metrics.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) path: Option<String>,
    pub(super) route: Option<Arc<Route>>,
    pub(super) internal: bool,
}

/// Keeps the in-flight gauge right even when a client disconnects and the
/// handler future is dropped midway.
pub(super) struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    pub(super) fn enter(metrics: &'a Metrics) -> Self {
        metrics.in_flight().inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight().dec();
    }
}
