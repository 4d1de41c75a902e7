//! One client connection: the first-byte and first-head deadline, the TLS
//! handshake, then HTTP/1.1, HTTP/2 or h2c detection with hyper, drained
//! gracefully on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::settings::{configure_http1, configure_http2, ConnSettings};
use crate::memory::ClosedOnDrop;
use crate::proxy::conn_io::{ConnActivity, GuardedIo};
use crate::proxy::first_head::{read_first_head, FirstHead, Prefixed};
use crate::proxy::{ConnInfo, Listener};
use crate::reload::SharedGateway;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// Plain text with HTTP/2 on: sniff the h2c preface.
    Detect,
}

/// One accepted connection and what it needs.
pub(super) struct Connection {
    pub(super) gateway: SharedGateway,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) settings: ConnSettings,
    pub(super) drain: watch::Receiver<bool>,
    /// Which listener accepted it.
    pub(super) listener: Listener,
    pub(super) _open: mpsc::Sender<()>,
    /// Its place under `max_connections`, given back when it closes.
    pub(super) _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Counts it closed when it drops (see [`crate::memory`]).
    pub(super) _counted: Option<ClosedOnDrop>,
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
    pub(super) async fn serve(self, tcp: TcpStream, peer: SocketAddr) {
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
