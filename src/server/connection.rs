//! One client connection: the first-byte and first-head deadline, the TLS
//! handshake, then HTTP/1.1, HTTP/2 or h2c detection with hyper, drained
//! gracefully on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::{service_fn, HttpService};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::settings::{configure_http1, configure_http2, ConnSettings};
use crate::memory::{ClosedOnDrop, ConnCounts};
use crate::proxy::conn_io::{BusyBody, ConnActivity, GuardedIo};
use crate::proxy::first_head::{is_h2_preface, read_first_head, read_more, FirstHead, Prefixed};
use crate::proxy::{ConnInfo, Listener};
use crate::reload::SharedGateway;
use crate::respond::ResponseBody;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// Plain text with HTTP/2 on: the first head tells (the h2c preface).
    Detect,
}

/// How long an HTTP/1.1 connection waits for its next request inside
/// hyper before it is parked (handed back from hyper, whose read and write
/// buffers and connection state are then freed: about 20 KiB). Short
/// enough that an idle kept-alive connection costs little more than its
/// socket; long enough that a client sending requests back to back keeps
/// hyper's state instead of building it again per request.
pub(super) const PARK_AFTER: Duration = Duration::from_secs(1);

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
    /// Where each park is counted like a close: hyper's state was freed
    /// the same way, and glibc keeps it until the trim gives it back.
    pub(super) released: Option<Arc<ConnCounts>>,
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

    async fn serve_http<I>(mut self, io: Prefixed<I>, peer: SocketAddr, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let protocol = match protocol {
            Protocol::Detect if is_h2_preface(io.prefix()) => Protocol::Http2,
            Protocol::Detect => Protocol::Http1,
            known => known,
        };
        let activity = Arc::new(ConnActivity::default());
        let info = ConnInfo {
            peer,
            tls: self.tls.is_some(),
            activity: Arc::clone(&activity),
            listener: self.listener,
        };
        let io = GuardedIo::new(io, activity, self.settings.idle_timeout);
        let gateway = Arc::clone(&self.gateway);
        let info = Arc::new(info);
        let service = service_fn(move |req| {
            // Loaded per request, not per connection: a reload applies to
            // the next request on a kept-alive connection, and this one
            // finishes on the config it started with.
            let gateway = gateway.load_full();
            let info = Arc::clone(&info);
            // Busy from the moment hyper hands the request over (it reads
            // the body before the handler first runs) until the response
            // body is sent: the connection is neither idle nor parked then.
            let busy = info.activity.busy();
            // Boxed: hyper keeps room for one in-flight future in every
            // connection for as long as it is open, idle or not, and the
            // request path's future is several KiB.
            async move {
                let reply = Box::pin(gateway.handle(req, &info)).await;
                Ok::<_, Infallible>(reply.map(|body| BusyBody::new(body, busy)))
            }
        });
        match protocol {
            Protocol::Http2 => {
                let mut builder = http2::Builder::new(TokioExecutor::new());
                configure_http2(&mut builder, &self.settings);
                // Boxed: the HTTP/2 state would otherwise size every
                // connection's task, HTTP/1.1 ones included.
                let drain = self.drain;
                Box::pin(async move { drive!(builder.serve_connection(TokioIo::new(io), service), drain) }).await;
            }
            Protocol::Http1 | Protocol::Detect => {
                let mut io = io.park_after(PARK_AFTER);
                let mut service = service;
                // Each round serves requests until the connection ends or
                // parks. Boxed, so that a parked connection's task holds
                // none of hyper's state, only the socket and the wait.
                while let Some((parked, left, again)) =
                    Box::pin(serve_http1(io, service, &self.settings, &mut self.drain)).await
                {
                    service = again;
                    io = parked;
                    if let Some(counts) = &self.released {
                        drop(counts.open());
                    }
                    let Some(head) = self.next_head(&mut io, left).await else {
                        return;
                    };
                    io.get_mut().set_prefix(head);
                }
            }
        }
    }

    /// A parked connection's next request head, read into a small buffer
    /// that starts with what hyper had read of it: None when the client
    /// closes, stays idle past the idle timeout, takes longer than the
    /// header-read timeout once it started the head, or the server drains.
    async fn next_head<I: AsyncRead + Unpin>(&self, io: &mut GuardedIo<Prefixed<I>>, left: Bytes) -> Option<Vec<u8>> {
        let idle_until = Instant::now() + io.idle_left_when_parked();
        let max = self.settings.max_header_bytes;
        let io = io.get_mut().get_mut();
        // Copied, and the original let go: `left` shares hyper's whole read
        // buffer (16 KiB), which it would otherwise keep while parked.
        let mut head = left.to_vec();
        drop(left);
        let read = async {
            if head.is_empty() {
                match tokio::time::timeout_at(idle_until, read_more(io, &mut head, max)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return false,
                }
            }
            // Once a head has begun, it has the header-read timeout to end
            // (as hyper gives one), however long the connection was idle.
            let head_by = Instant::now() + self.settings.header_read_timeout;
            matches!(
                tokio::time::timeout_at(head_by, read_first_head(io, &mut head, max)).await,
                Ok(Ok(FirstHead::Ready))
            )
        };
        let mut drain = self.drain.clone();
        // Nothing is in flight: a drain closes the connection now.
        let complete = tokio::select! {
            complete = read => complete,
            () = async { let _ = drain.wait_for(|draining| *draining).await; } => false,
        };
        complete.then_some(head)
    }
}

/// The hyper connection one round of [`serve_http1`] serves.
type Http1Conn<I, S> = http1::UpgradeableConnection<TokioIo<GuardedIo<Prefixed<I>>>, S>;

/// Serves HTTP/1.1 requests on `io` until the connection ends (None) or
/// parks: then its I/O, the bytes hyper had read beyond the last request
/// (the start of the next head, at most) and the service come back.
async fn serve_http1<I, S>(
    io: GuardedIo<Prefixed<I>>,
    service: S,
    settings: &ConnSettings,
    drain: &mut watch::Receiver<bool>,
) -> Option<(GuardedIo<Prefixed<I>>, Bytes, S)>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = BusyBody<ResponseBody>, Error = Infallible> + Unpin,
    Http1Conn<I, S>: Unpin,
{
    let mut builder = http1::Builder::new();
    configure_http1(&mut builder, settings);
    let mut conn: Http1Conn<I, S> = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::select! {
        result = &mut conn => {
            // A parked connection's EOF can cut a pipelined head hyper had
            // begun (an error here): its bytes come back with the parts.
            if let Err(e) = result {
                tracing::debug!(error = %e, "client connection ended with an error");
            }
        }
        () = async { let _ = drain.wait_for(|draining| *draining).await; } => {
            std::pin::Pin::new(&mut conn).graceful_shutdown();
            if let Err(e) = (&mut conn).await {
                tracing::debug!(error = %e, "client connection ended with an error while draining");
            }
            return None;
        }
    }
    // None after an upgrade: the tunnel has the connection.
    let parts = conn.into_parts()?;
    let mut io = parts.io.into_inner();
    io.take_parked().then_some((io, parts.read_buf, parts.service))
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
