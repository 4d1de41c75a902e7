//! HTTP/1.1 upgrades (WebSocket and others): once both sides have switched
//! protocols, bytes are copied both ways until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::conn_io::BusyGuard;

/// Joins the client's and the upstream's upgraded connections. `busy` keeps
/// the client connection from counting as idle while the tunnel is open.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, busy: BusyGuard, request_id: String) {
    tokio::spawn(async move {
        let _busy = busy;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(request_id, error = %e, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(request_id, up, down, "upgraded connection closed"),
            Err(e) => {
                tracing::debug!(request_id, error = %e, "upgraded connection ended with an error")
            }
        }
    });
}
