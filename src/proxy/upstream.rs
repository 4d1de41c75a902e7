//! The upstream client: HTTP/1.1 connections over TCP or TLS, kept in a
//! small LIFO pool per upstream.
//!
//! Why not hyper-util's pooled client: it spawns a task per request, and on
//! a 2-core box the wake-ups cost more than the proxying. Here a request
//! runs on the connection's own task; the pool is a short mutex over a Vec
//! (LIFO keeps the warmest connection in use), one per serving thread: an
//! upstream connection's task runs on the thread that opened it, so only
//! that thread reuses it (see [`crate::serving`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::respond::body::{ConnectionPool, Lease, PooledBody, RequestBody};

type Sender = http1::SendRequest<RequestBody>;

/// Why the upstream could not be reached or answered badly.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting to the upstream timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake with the upstream failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP handshake with the upstream failed: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("the upstream request failed: {0}")]
    Request(#[source] hyper::Error),
}

/// Connection settings shared by every upstream.
#[derive(Clone)]
pub struct PoolSettings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
    /// Present when https upstreams are possible.
    pub tls: Option<TlsConnector>,
}

/// One upstream origin and its idle connections.
pub struct Upstream {
    host: String,
    port: u16,
    tls_name: Option<ServerName<'static>>,
    /// `host[:port]` for the Host header when the route does not keep the
    /// client's.
    pub authority: HeaderValue,
    /// Path the upstream URL adds in front of every request path ("" if none).
    pub base_path: String,
    settings: PoolSettings,
    /// Idle connections, one list per serving thread (index
    /// [`crate::serving::pool_slot`]; 0 for every other thread). Sized
    /// for one serving thread per core: with more threads than cores,
    /// some share a list, which is correct, only less local.
    idle: Box<[Mutex<Vec<IdleConn>>]>,
}

struct IdleConn {
    sender: Sender,
    since: Instant,
}

impl Upstream {
    /// Builds an upstream from an `http://` or `https://` URL that config
    /// validation has already checked.
    pub fn new(url: &str, settings: PoolSettings) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("`{url}` is not an http(s) URL")),
        };
        let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let authority = HeaderValue::from_str(authority).map_err(|e| format!("`{url}`: {e}"))?;
        let tls_name = if https {
            if settings.tls.is_none() {
                return Err("https upstreams need TLS settings".into());
            }
            Some(ServerName::try_from(host.clone()).map_err(|e| format!("`{url}`: {e}"))?)
        } else {
            None
        };
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Self {
            host,
            port,
            tls_name,
            authority,
            base_path,
            settings,
            idle: (0..=std::thread::available_parallelism().map_or(1, |n| n.get()))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        })
    }

    /// Whether this upstream is spoken to over TLS.
    pub fn is_https(&self) -> bool {
        self.tls_name.is_some()
    }

    /// Sends a request (origin-form URI, Host set) and returns the response
    /// head; the body streams from the connection as the caller reads it.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
        keep_connection: bool,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        // Reused connections can have been closed by the upstream at any
        // moment; hyper hands back a request it did not start to send, and
        // that one is safe to retry on another connection.
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.wrap(response, sender, keep_connection)),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamError::Request(failed.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(req).await.map_err(UpstreamError::Request)?;
        Ok(self.wrap(response, sender, keep_connection))
    }

    fn wrap(self: &Arc<Self>, response: Response<Incoming>, sender: Sender, keep: bool) -> Response<PooledBody> {
        // A 101 hands the connection over to the upgraded protocol.
        let lease = (keep && response.status() != http::StatusCode::SWITCHING_PROTOCOLS)
            .then(|| Lease::new(sender, Arc::clone(self) as Arc<dyn ConnectionPool>));
        response.map(|body| PooledBody::new(body, lease))
    }

    /// This thread's idle list.
    fn idle_here(&self) -> &Mutex<Vec<IdleConn>> {
        &self.idle[crate::serving::pool_slot() % self.idle.len()]
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle_here().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(conn) = idle.pop() {
            if !conn.sender.is_closed() && conn.since.elapsed() < self.settings.idle_timeout {
                return Some(conn.sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let timeout = self.settings.connect_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout(timeout))?
            .map_err(UpstreamError::Connect)?;
        // Small request heads must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        match (&self.tls_name, &self.settings.tls) {
            (Some(name), Some(connector)) => {
                let tls = tokio::time::timeout(timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| UpstreamError::ConnectTimeout(timeout))?
                    .map_err(UpstreamError::Tls)?;
                handshake(tls).await
            }
            _ => handshake(tcp).await,
        }
    }
}

impl ConnectionPool for Upstream {
    fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle_here().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.settings.max_idle {
            idle.push(IdleConn {
                sender,
                since: Instant::now(),
            });
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, UpstreamError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(UpstreamError::Handshake)?;
    // One task per connection (not per request) drives its I/O.
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
