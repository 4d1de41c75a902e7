//! Client connection I/O with slow-client protection: a connection with no
//! request in flight that stays silent for the idle timeout is closed, and
//! a write the client does not drain within it fails. A request in flight
//! (a long poll, a WebSocket) is not idle, however quiet.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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
    read_deadline: Deadline,
    write_deadline: Deadline,
}

impl<T> GuardedIo<T> {
    pub fn new(inner: T, activity: Arc<ConnActivity>, idle: Duration) -> Self {
        Self {
            inner,
            activity,
            idle,
            read_deadline: Deadline::new(),
            write_deadline: Deadline::new(),
        }
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
                if this.read_deadline.expired(this.idle, cx) {
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
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
