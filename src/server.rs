//! The listener: accepts connections (plain or TLS), serves HTTP/1.1 and
//! HTTP/2 on them with hyper, and drains gracefully on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::conn_io::{ConnActivity, GuardedIo};
use crate::proxy::{BuildError, ConnInfo, Gateway};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("login setup: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
}

/// Per-connection protocol settings.
#[derive(Clone)]
struct ConnSettings {
    http2: bool,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

/// A bound, not yet running, doorward.
pub struct Server {
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<TlsAcceptor>,
    settings: ConnSettings,
    shutdown_grace: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// Plain text with HTTP/2 on: sniff the h2c preface.
    Detect,
}

impl Server {
    /// Builds the gateway and binds the configured address (port 0 picks a
    /// free port; see [`Server::local_addr`]).
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Self::with_listener(config, listener).await
    }

    /// Like [`Server::bind`] on a listener the caller bound already (tests
    /// that must know the port before the config is written).
    pub async fn with_listener(config: &Config, listener: TcpListener) -> Result<Self, StartError> {
        let auth = crate::auth::Auth::from_config(config).await?.map(Arc::new);
        if let Some(auth) = &auth {
            auth.warm_up();
        }
        let gateway = Arc::new(Gateway::new(config, Arc::new(Metrics::new()), auth)?);
        let tls = match &config.server.tls {
            Some(files) => Some(TlsAcceptor::from(crate::tls::server_config(
                &files.cert,
                &files.key,
                config.server.http2,
            )?)),
            None => None,
        };
        Ok(Self {
            listener,
            gateway,
            tls,
            settings: ConnSettings {
                http2: config.server.http2,
                header_read_timeout: config.server.header_read_timeout.0,
                idle_timeout: config.server.idle_timeout.0,
            },
            shutdown_grace: config.server.shutdown_grace.0,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives
    /// in-flight requests up to the grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            gateway,
            tls,
            settings,
            shutdown_grace,
        } = self;
        let (drain_tx, drain_rx) = watch::channel(false);
        // Every connection task holds a sender; recv() returns None once
        // they have all finished.
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        gateway.readiness.set_listening();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let conn = Connection {
                            gateway: Arc::clone(&gateway),
                            tls: tls.clone(),
                            settings: settings.clone(),
                            drain: drain_rx.clone(),
                            _open: open_tx.clone(),
                        };
                        tokio::spawn(conn.serve(tcp, peer));
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

/// One accepted connection and what it needs.
struct Connection {
    gateway: Arc<Gateway>,
    tls: Option<TlsAcceptor>,
    settings: ConnSettings,
    drain: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

/// Drives a hyper connection; on drain, asks it to finish gracefully (no
/// new requests, in-flight ones complete) and waits for it.
macro_rules! drive {
    ($conn:expr, $drain:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let mut drain = $drain;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
            }
            () = async { let _ = drain.wait_for(|draining| *draining).await; } => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "client connection ended with an error while draining");
                }
            }
        }
    }};
}

impl Connection {
    async fn serve(self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(ConnActivity::default());
        let info = ConnInfo {
            peer,
            tls: self.tls.is_some(),
            activity: Arc::clone(&activity),
        };
        let idle = self.settings.idle_timeout;
        match self.tls.clone() {
            None => {
                let protocol = if self.settings.http2 {
                    Protocol::Detect
                } else {
                    Protocol::Http1
                };
                self.serve_http(GuardedIo::new(tcp, activity, idle), info, protocol)
                    .await;
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(self.settings.header_read_timeout, acceptor.accept(tcp));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let protocol = match stream.get_ref().1.alpn_protocol() {
                    Some(b"h2") => Protocol::Http2,
                    _ => Protocol::Http1,
                };
                self.serve_http(GuardedIo::new(stream, activity, idle), info, protocol)
                    .await;
            }
        }
    }

    async fn serve_http<I>(self, io: I, info: ConnInfo, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gateway = self.gateway;
        let info = Arc::new(info);
        let service = service_fn(move |req| {
            let gateway = Arc::clone(&gateway);
            let info = Arc::clone(&info);
            async move { Ok::<_, Infallible>(gateway.handle(req, &info).await) }
        });
        let io = TokioIo::new(io);
        let header_timeout = self.settings.header_read_timeout;
        match protocol {
            Protocol::Http1 => {
                let mut builder = http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
                drive!(builder.serve_connection(io, service).with_upgrades(), self.drain);
            }
            Protocol::Http2 => {
                let mut builder = http2::Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new());
                drive!(builder.serve_connection(io, service), self.drain);
            }
            Protocol::Detect => {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout);
                builder.http2().timer(TokioTimer::new());
                drive!(builder.serve_connection_with_upgrades(io, service), self.drain);
            }
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
