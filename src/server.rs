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
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use tokio::sync::Semaphore;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::{Config, RuntimeShape};
use crate::memory::{ClosedOnDrop, ConnCounts};
use crate::metrics::Metrics;
use crate::proxy::conn_io::{ConnActivity, GuardedIo};
use crate::proxy::first_head::{read_first_head, FirstHead, Prefixed};
use crate::proxy::{ConnInfo, Gateway, GatewayError, Listener};
use crate::reload::SharedGateway;
use crate::serving::ServingThreads;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("login setup: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error("cannot start the serving threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// Per-connection protocol settings.
#[derive(Clone)]
struct ConnSettings {
    http2: bool,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
    http2_max_concurrent_streams: u32,
}

/// How a server is started beyond its config (tests set a manual clock).
#[derive(Clone, Default)]
pub struct ServerOptions {
    pub clock: Clock,
}

/// A bound, not yet running, doorward.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    /// `[scim] listen`: the SCIM endpoints on their own listener.
    scim_listener: Option<TcpListener>,
    /// Swapped by a config reload ([`crate::reload`]).
    gateway: SharedGateway,
    tls: Option<TlsAcceptor>,
    settings: ConnSettings,
    shutdown_grace: Duration,
    max_connections: usize,
    /// `runtime = "per-core"`: where client connections are served; None
    /// serves them on the calling runtime.
    serving: Option<ServingThreads>,
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
        Self::with_options(config, listener, ServerOptions::default()).await
    }

    /// Like [`Server::with_listener`], with options (a test clock).
    pub async fn with_options(
        config: &Config,
        listener: TcpListener,
        options: ServerOptions,
    ) -> Result<Self, StartError> {
        crate::build::warn_weakened(config);
        let clock = options.clock;
        let signer = Arc::new(crate::build::signer(config)?);
        let pages = Arc::new(crate::build::pages(config)?);
        let metrics = Arc::new(Metrics::new());
        let auth = crate::auth::Auth::from_config(
            config,
            Arc::clone(&signer),
            Arc::clone(&pages),
            metrics.auth().clone(),
            clock.clone(),
        )
        .await?
        .map(Arc::new);
        if let Some(auth) = &auth {
            auth.warm_up();
        }
        crate::auth::end_orphaned_sessions(auth.as_ref()).await;
        let gateway = Arc::new(ArcSwap::from_pointee(Gateway::new(
            config, metrics, auth, signer, pages, clock,
        )?));
        let metrics_listener = match config.server.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let scim_listener = match config.scim.listen.filter(|_| config.scim.enabled) {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let tls = match &config.server.tls {
            Some(files) => Some(TlsAcceptor::from(crate::tls::server_config(
                &files.cert,
                &files.key,
                config.server.http2,
            )?)),
            None => None,
        };
        let serving = match config.server.runtime {
            RuntimeShape::PerCore => {
                Some(ServingThreads::start(config.server.worker_threads).map_err(StartError::Threads)?)
            }
            RuntimeShape::Shared => None,
        };
        Ok(Self {
            serving,
            listener,
            metrics_listener,
            scim_listener,
            gateway,
            tls,
            settings: ConnSettings {
                http2: config.server.http2,
                header_read_timeout: config.server.header_read_timeout.0,
                idle_timeout: config.server.idle_timeout.0,
                max_header_bytes: usize::try_from(config.server.max_header_bytes.0).unwrap_or(usize::MAX),
                http2_max_concurrent_streams: config.server.http2_max_concurrent_streams,
            },
            shutdown_grace: config.server.shutdown_grace.0,
            max_connections: config.server.max_connections,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The separate metrics listener's address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The separate SCIM listener's address, when configured.
    pub fn scim_addr(&self) -> Option<SocketAddr> {
        self.scim_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The request path as configured now (tests reach the auth state
    /// through it).
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.load_full()
    }

    /// The swappable request path, for a [`crate::reload::Reloader`].
    pub fn shared_gateway(&self) -> SharedGateway {
        Arc::clone(&self.gateway)
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives
    /// in-flight requests up to the grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            metrics_listener,
            scim_listener,
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

/// One accepted connection and what it needs.
struct Connection {
    gateway: SharedGateway,
    tls: Option<TlsAcceptor>,
    settings: ConnSettings,
    drain: watch::Receiver<bool>,
    /// Which listener accepted it.
    listener: Listener,
    _open: mpsc::Sender<()>,
    /// Its place under `max_connections`, given back when it closes.
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Counts it closed when it drops (see [`crate::memory`]).
    _counted: Option<ClosedOnDrop>,
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
        // One deadline from accept for the first byte, the TLS handshake
        // and the first request head. hyper's own header-read timer starts
        // only when hyper reads a head, which with h2c detection or TLS
        // waits for bytes: a client that sent nothing was held until the
        // idle timeout.
        let deadline = Instant::now() + self.settings.header_read_timeout;
        // A silent connection costs no TLS or HTTP state until it speaks
        // (peek, not readable(): readiness can be a false positive).
        match tokio::time::timeout_at(deadline, tcp.peek(&mut [0u8; 1])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "client connection failed before sending anything");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "client sent nothing within the header-read timeout");
                return;
            }
        }
        let max_head = self.settings.max_header_bytes;
        // The TLS and HTTP state is boxed (several KiB), so the task itself
        // stays small while a client is still sending its first head.
        match self.tls.clone() {
            None => {
                let protocol = if self.settings.http2 {
                    Protocol::Detect
                } else {
                    Protocol::Http1
                };
                if let Some(io) = first_head(tcp, peer, deadline, max_head).await {
                    Box::pin(self.serve_http(io, peer, protocol)).await;
                }
            }
            Some(acceptor) => {
                let stream = match tokio::time::timeout_at(deadline, Box::pin(acceptor.accept(tcp))).await {
                    Ok(Ok(stream)) => Box::new(stream),
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
                if let Some(io) = first_head(stream, peer, deadline, max_head).await {
                    Box::pin(self.serve_http(io, peer, protocol)).await;
                }
            }
        }
    }

    async fn serve_http<I>(self, io: I, peer: SocketAddr, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(ConnActivity::default());
        let info = ConnInfo {
            peer,
            tls: self.tls.is_some(),
            activity: Arc::clone(&activity),
            listener: self.listener,
        };
        let io = GuardedIo::new(io, activity, self.settings.idle_timeout);
        let gateway = self.gateway;
        let info = Arc::new(info);
        let service = service_fn(move |req| {
            // Loaded per request, not per connection: a reload applies to
            // the next request on a kept-alive connection, and this one
            // finishes on the config it started with.
            let gateway = gateway.load_full();
            let info = Arc::clone(&info);
            // Boxed: hyper keeps room for one in-flight future in every
            // connection for as long as it is open, idle or not, and the
            // request path's future is several KiB.
            async move { Ok::<_, Infallible>(Box::pin(gateway.handle(req, &info)).await) }
        });
        let io = TokioIo::new(io);
        let s = &self.settings;
        match protocol {
            Protocol::Http1 => {
                let mut builder = http1::Builder::new();
                configure_http1(&mut builder, s);
                drive!(builder.serve_connection(io, service).with_upgrades(), self.drain);
            }
            Protocol::Http2 => {
                let mut builder = http2::Builder::new(TokioExecutor::new());
                configure_http2(&mut builder, s);
                drive!(builder.serve_connection(io, service), self.drain);
            }
            Protocol::Detect => {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                configure_http1(&mut builder.http1(), s);
                configure_http2(&mut builder.http2(), s);
                drive!(builder.serve_connection_with_upgrades(io, service), self.drain);
            }
        }
    }
}

/// The connection with its first request head read (see
/// [`crate::proxy::first_head`]), or None when the client closed, failed
/// or did not finish the head by `deadline`.
async fn first_head<T: AsyncRead + Unpin>(
    mut io: T,
    peer: SocketAddr,
    deadline: Instant,
    max_head: usize,
) -> Option<Prefixed<T>> {
    let mut buf = Vec::new();
    match tokio::time::timeout_at(deadline, read_first_head(&mut io, &mut buf, max_head)).await {
        Ok(Ok(FirstHead::Ready)) => Some(Prefixed::new(buf, io)),
        Ok(Ok(FirstHead::Closed)) => None,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "client connection failed during its first request head");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "no complete request head within the header-read timeout");
            None
        }
    }
}

/// HTTP/1.1 limits: the head must arrive in time and within its size
/// (bigger gets 431 from hyper).
fn configure_http1<B: Http1Settings>(builder: &mut B, s: &ConnSettings) {
    builder.apply(s);
}

/// HTTP/2 limits: concurrent streams, header list size (which also bounds a
/// CONTINUATION flood), and the resets a client may make us do (rapid reset,
/// CVE-2023-44487) before the connection is closed.
fn configure_http2<B: Http2Settings>(builder: &mut B, s: &ConnSettings) {
    builder.apply(s);
}

/// hyper's HTTP/1.1 builders (plain and inside `auto`) take the same calls
/// under different types.
trait Http1Settings {
    fn apply(&mut self, s: &ConnSettings);
}

trait Http2Settings {
    fn apply(&mut self, s: &ConnSettings);
}

macro_rules! http1_settings {
    ($ty:ty) => {
        impl Http1Settings for $ty {
            fn apply(&mut self, s: &ConnSettings) {
                self.timer(TokioTimer::new())
                    .header_read_timeout(s.header_read_timeout)
                    // A head that does not fit the read buffer gets 431.
                    .max_buf_size(s.max_header_bytes.max(8192));
            }
        }
    };
}

macro_rules! http2_settings {
    ($ty:ty) => {
        impl Http2Settings for $ty {
            fn apply(&mut self, s: &ConnSettings) {
                self.timer(TokioTimer::new())
                    .max_concurrent_streams(s.http2_max_concurrent_streams)
                    .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
                    .max_pending_accept_reset_streams(50)
                    .max_local_error_reset_streams(1024)
                    .keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(20));
            }
        }
    };
}

http1_settings!(http1::Builder);
http1_settings!(auto::Http1Builder<'_, TokioExecutor>);
http2_settings!(http2::Builder<TokioExecutor>);
http2_settings!(auto::Http2Builder<'_, TokioExecutor>);

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
