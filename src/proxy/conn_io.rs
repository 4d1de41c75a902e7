//! Client connection I/O with slow-client protection: a connection with no
//! request in flight that stays silent for the idle timeout is closed, and
//! a write the client does not drain within it fails. A request in flight
//! (a long poll, a WebSocket, a response body still streaming) is not idle,
//! however quiet.
//!
//! An HTTP/1.1 connection can also be *parked*: once it has been idle for a
//! short while, its next read ends (a clean EOF to hyper) so that hyper
//! hands the connection back and its buffers are freed while the client
//! thinks about its next request (see `server::connection`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Per-connection count of requests (and tunnels) in flight.
#[derive(Debug, Default)]
pub struct ConnActivity {
    in_flight: AtomicUsize,
}

impl ConnActivity {
    /// Marks one request busy until the guard drops.
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        BusyGuard(Arc::clone(self))
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }
}

pub struct BusyGuard(Arc<ConnActivity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A deadline armed when an operation starts waiting and disarmed when it
/// makes progress; one timer allocation per connection at most.
struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Deadline {
    const fn new() -> Self {
        Self {
            sleep: None,
            armed: false,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Arms if needed; true when the deadline has passed.
    fn expired(&mut self, after: Duration, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let at = Instant::now() + after;
            match self.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        self.sleep.as_mut().is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}

pub struct GuardedIo<T> {
    inner: T,
    activity: Arc<ConnActivity>,
    idle: Duration,
    /// Idle this long, the connection is parked instead of waiting on
    /// (None: it is never parked, the idle timeout applies).
    park_after: Option<Duration>,
    /// A read ended because the connection was parked, not because the
    /// client closed.
    parked: bool,
    read_deadline: Deadline,
    write_deadline: Deadline,
}

impl<T> GuardedIo<T> {
    pub fn new(inner: T, activity: Arc<ConnActivity>, idle: Duration) -> Self {
        Self {
            inner,
            activity,
            idle,
            park_after: None,
            parked: false,
            read_deadline: Deadline::new(),
            write_deadline: Deadline::new(),
        }
    }

    /// Parks the connection once it has been idle for `after` (when that is
    /// shorter than the idle timeout): its next read then ends as if the
    /// client had closed, with nothing in flight and nothing buffered by
    /// this layer. Only for HTTP/1.1, whose server takes that EOF between
    /// requests as the end of the connection, not an error.
    pub fn park_after(mut self, after: Duration) -> Self {
        self.park_after = (after < self.idle).then_some(after);
        self
    }

    /// True (once) if the last read ended because the connection was
    /// parked; it is then unparked and waits for parking again.
    pub fn take_parked(&mut self) -> bool {
        self.read_deadline.disarm();
        std::mem::take(&mut self.parked)
    }

    /// How long a parked connection may still wait for its next request.
    pub fn idle_left_when_parked(&self) -> Duration {
        self.idle.saturating_sub(self.park_after.unwrap_or_default())
    }

    /// The connection below, for reading while parked (no deadline of this
    /// layer applies then; the caller bounds the time).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("client connection {what}"))
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending if this.activity.is_idle() => {
                if let Some(after) = this.park_after {
                    if this.read_deadline.expired(after, cx) {
                        // Nothing filled: hyper reads an EOF between requests.
                        this.parked = true;
                        return Poll::Ready(Ok(()));
                    }
                } else if this.read_deadline.expired(this.idle, cx) {
                    return Poll::Ready(Err(timed_out("was idle too long")));
                }
                Poll::Pending
            }
            other => {
                this.read_deadline.disarm();
                other
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch_write(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch_write(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch_write(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.parked {
            // hyper ends the connection it took the EOF for; the client's
            // connection stays open, parked.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T> GuardedIo<T> {
    /// A write stuck longer than the idle timeout means the client stopped
    /// reading: fail it so the connection (and its upstream) are freed.
    fn watch_write<R>(&mut self, polled: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => {
                if self.write_deadline.expired(self.idle, cx) {
                    return Poll::Ready(Err(timed_out("stopped reading")));
                }
                Poll::Pending
            }
            ready => {
                self.write_deadline.disarm();
                ready
            }
        }
    }
}

/// A response body that keeps its connection busy until it has been sent
/// whole: hyper reads from the connection while a response streams (to see
/// the client leave), and those reads must neither time out as idle nor
/// park the connection.
pub struct BusyBody<B> {
    inner: B,
    busy: Option<BusyGuard>,
}

impl<B> BusyBody<B> {
    pub fn new(inner: B, busy: BusyGuard) -> Self {
        Self {
            inner,
            busy: Some(busy),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for BusyBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // Done at its end or its error (hyper drops a body it does not poll).
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || this.inner.is_end_stream() {
            this.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const MINUTE: Duration = Duration::from_secs(60);
    const PARK: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn an_idle_connection_parks_after_the_delay_and_a_busy_one_does_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let activity = Arc::new(ConnActivity::default());
        let mut io = GuardedIo::new(server, Arc::clone(&activity), MINUTE).park_after(PARK);
        let mut buf = [0u8; 8];

        let busy = activity.busy();
        assert!(tokio::time::timeout(PARK * 3, io.read(&mut buf)).await.is_err());
        drop(busy);

        let idle_from = Instant::now();
        assert_eq!(io.read(&mut buf).await.expect("parked, not failed"), 0);
        assert!(idle_from.elapsed() >= PARK);
        // hyper shuts down what it took for closed: the client's side stays open.
        io.shutdown().await.expect("shutdown");
        assert!(io.take_parked());
        assert!(!io.take_parked(), "taken once");
        client.write_all(b"next").await.expect("the client can still send");
        assert_eq!(io.get_mut().read(&mut buf).await.expect("read"), 4);
    }

    #[tokio::test]
    async fn without_parking_or_with_it_past_the_idle_timeout_an_idle_read_times_out() {
        for park_after in [None, Some(PARK * 2)] {
            let (_client, server) = tokio::io::duplex(64);
            let mut io = GuardedIo::new(server, Arc::default(), PARK);
            if let Some(after) = park_after {
                io = io.park_after(after);
            }
            let idle_from = Instant::now();
            let err = io.read(&mut [0u8; 8]).await.expect_err("idle too long");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(idle_from.elapsed() >= PARK);
            assert!(!io.take_parked());
        }
    }

    #[tokio::test]
    async fn a_response_body_keeps_its_connection_busy_until_it_ends() {
        let activity = Arc::new(ConnActivity::default());
        let mut body = BusyBody::new(Full::new(Bytes::from_static(b"x")), activity.busy());
        assert!(!activity.is_idle());
        let frame = body.frame().await.expect("a frame").expect("data");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"x")));
        assert!(activity.is_idle(), "idle once the last frame is out");
    }
}
