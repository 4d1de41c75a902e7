//! Accepting and draining: the accept loop under the connection cap, the
//! side listeners, the graceful drain on shutdown, and the signals that
//! start it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::connection::Connection;
use super::settings::ConnSettings;
use super::Server;
use crate::memory::ConnCounts;
use crate::proxy::Listener;
use crate::reload::SharedGateway;

impl Server {
    /// Serves until `shutdown` resolves, then stops accepting and gives
    /// in-flight requests up to the grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            metrics_listener,
            scim_listener,
            admin_listener,
            gateway,
            tls,
            settings,
            shutdown_grace,
            max_connections,
            serving,
        } = self;
        let (drain_tx, drain_rx) = watch::channel(false);
        // Every connection task holds a sender; recv() returns None once
        // they have all finished.
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        if let Some(metrics) = metrics_listener {
            let side = Side {
                listener: Listener::Metrics,
                tls: None,
                settings: ConnSettings {
                    http2: false,
                    ..settings.clone()
                },
            };
            tokio::spawn(serve_side(metrics, side, Arc::clone(&gateway), drain_rx.clone()));
        }
        if let Some(scim) = scim_listener {
            // The IdP's credentials travel here: TLS whenever the main
            // listener has it.
            let side = Side {
                listener: Listener::Scim,
                tls: tls.clone(),
                settings: settings.clone(),
            };
            tokio::spawn(serve_side(scim, side, Arc::clone(&gateway), drain_rx.clone()));
        }
        if let Some(admin) = admin_listener {
            // The admin token travels here: TLS whenever the main listener
            // has it, as for SCIM.
            let side = Side {
                listener: Listener::Admin,
                tls: tls.clone(),
                settings: ConnSettings {
                    http2: false,
                    ..settings.clone()
                },
            };
            tokio::spawn(serve_side(admin, side, Arc::clone(&gateway), drain_rx.clone()));
        }
        // Readiness is carried from gateway to gateway by reloads.
        gateway.load().readiness.set_listening();
        // At the cap, accepting pauses: new connections wait in the
        // kernel's listen queue while the open ones keep being served.
        let slots = Arc::new(Semaphore::new(max_connections));
        let counts = Arc::new(ConnCounts::default());
        // Stopped when `run` ends or is dropped (tests abort it).
        let _trimmer = AbortOnDrop(tokio::spawn(crate::memory::trim_after_closes(Arc::clone(&counts))));
        let mut cap_logged: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let slot = match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if cap_logged.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(
                            max_connections,
                            "connection cap reached: new connections wait until one closes"
                        );
                        cap_logged = Some(Instant::now());
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        slot = Arc::clone(&slots).acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let conn = Connection {
                            gateway: Arc::clone(&gateway),
                            tls: tls.clone(),
                            settings: settings.clone(),
                            drain: drain_rx.clone(),
                            listener: Listener::Main,
                            _open: open_tx.clone(),
                            _slot: Some(slot),
                            _counted: Some(counts.open()),
                            released: Some(Arc::clone(&counts)),
                        };
                        match &serving {
                            Some(threads) => threads.serve(tcp, move |tcp| conn.serve(tcp, peer)),
                            None => {
                                tokio::spawn(conn.serve(tcp, peer));
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        tracing::info!(grace = ?shutdown_grace, "shutting down: no new connections, draining in-flight requests");
        let _ = drain_tx.send(true);
        drop(open_tx);
        match tokio::time::timeout(shutdown_grace, open_rx.recv()).await {
            Ok(_) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!("grace period over; closing the remaining connections"),
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a side listener serves its connections.
struct Side {
    listener: Listener,
    tls: Option<TlsAcceptor>,
    settings: ConnSettings,
}

/// A side listener (metrics: plain HTTP/1.1, operational endpoints only;
/// SCIM: the SCIM endpoints only), until the drain starts. Its
/// connections are outside `max_connections`, which is for app traffic.
async fn serve_side(listener: TcpListener, side: Side, gateway: SharedGateway, drain: watch::Receiver<bool>) {
    let mut stop = drain.clone();
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|draining| *draining).await; } => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (open, _) = mpsc::channel::<()>(1);
                    let conn = Connection {
                        gateway: Arc::clone(&gateway),
                        tls: side.tls.clone(),
                        settings: side.settings.clone(),
                        drain: drain.clone(),
                        listener: side.listener,
                        _open: open,
                        _slot: None,
                        _counted: None,
                        released: None,
                    };
                    tokio::spawn(conn.serve(tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, listener = ?side.listener, "side listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
