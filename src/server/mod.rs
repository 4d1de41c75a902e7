//! The listener: binds the configured addresses (the main listener, the
//! metrics, SCIM and admin side listeners) and the TLS acceptor, and builds the
//! gateway a [`Server`] serves. Accepting and draining are in `accept`,
//! serving one connection (HTTP/1.1 and HTTP/2 with hyper) in `connection`,
//! its protocol limits in `settings`.

mod accept;
mod connection;
mod settings;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::{Config, RuntimeShape};
use crate::metrics::Metrics;
use crate::proxy::{Gateway, GatewayError};
use crate::reload::SharedGateway;
use crate::serving::ServingThreads;
pub use accept::shutdown_signal;
use settings::ConnSettings;

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
    /// `[admin] listen`: the operators' API, never on another listener.
    admin_listener: Option<TcpListener>,
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
        if let Some(signals) = &gateway.load().signals {
            signals.start();
        }
        let generation = gateway.load().access().generation().clone();
        crate::proxy::watch::spawn_watcher(Arc::downgrade(&gateway), &generation);
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
        let admin_listener = match config.admin.listen {
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
            admin_listener,
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

    /// The admin API listener's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener.as_ref().and_then(|l| l.local_addr().ok())
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
}
