//! Body types on both sides of the proxy. Both stream: nothing here buffers
//! a whole body (except a request whose digest must be signed, up to its
//! limit), so a 1 GiB upload or download passes in bounded memory.
//! doorward's own answers (pages, JSON) are [`ResponseBody::Full`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use tokio::time::{Instant, Sleep};

use crate::access::Registration;

/// Why a client's request body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than the configured limit")]
    TooLarge,
    #[error("client sent no body data for {0:?}")]
    Stalled(Duration),
    #[error("the upload took longer than {0:?}")]
    TooSlow(Duration),
    #[error("reading the request body failed: {0}")]
    Client(#[source] BoxError),
}

/// What a request body other than hyper's own may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client's request body as the request path takes it. Serving, it is
/// hyper's [`Incoming`], forwarded as it is (no box, no allocation); the
/// in-process tests pass bodies made in memory, boxed once when forwarded.
/// The request path is generic over it, so each kind is monomorphised.
pub trait ClientBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + Sized + 'static {
    /// How the body is held on its way upstream.
    fn into_source(self) -> Source {
        Source(Held::Local(UnsyncBoxBody::new(self.map_err(Into::into))))
    }
}

impl ClientBody for Incoming {
    fn into_source(self) -> Source {
        Source(Held::Client(self))
    }
}

impl ClientBody for Full<Bytes> {}
impl ClientBody for Empty<Bytes> {}
impl ClientBody for UnsyncBoxBody<Bytes, BoxError> {}

/// A client's request body, whatever its kind (see [`ClientBody`]).
pub struct Source(Held);

enum Held {
    Client(Incoming),
    Local(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body for Source {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Held::Client(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Held::Local(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Held::Client(body) => body.is_end_stream(),
            Held::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Held::Client(body) => body.size_hint(),
            Held::Local(body) => body.size_hint(),
        }
    }
}

/// The client-side failure behind an upstream request error, kept as a
/// plain value so the error page can say 413/408/400 instead of 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    TooLarge,
    Stalled,
    Broken,
}

impl BodyError {
    pub fn failure(&self) -> BodyFailure {
        match self {
            Self::TooLarge => BodyFailure::TooLarge,
            Self::Stalled(_) | Self::TooSlow(_) => BodyFailure::Stalled,
            Self::Client(_) => BodyFailure::Broken,
        }
    }
}

/// Finds a [`BodyError`] in an error's source chain: hyper reports a failed
/// request body as a failed request.
pub fn body_failure_in(error: &(dyn std::error::Error + 'static)) -> Option<BodyFailure> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(body) = e.downcast_ref::<BodyError>() {
            return Some(body.failure());
        }
        current = e.source();
    }
    None
}

/// Bounds on a client's request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body, if limited.
    pub max: Option<u64>,
    /// Longest silence between chunks.
    pub idle: Duration,
    /// Longest whole upload.
    pub deadline: Duration,
}

/// The client's request body on its way upstream, with an optional size
/// limit, an idle timeout between chunks and a deadline for the whole
/// upload (a stalled or trickling upload must not hold an upstream
/// connection for ever). Or, when it had to be read first (to sign its
/// digest), the bytes read.
pub struct RequestBody {
    inner: Option<Source>,
    buffered: Option<Bytes>,
    remaining: Option<u64>,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    timer_armed: bool,
    deadline: Option<Pin<Box<Sleep>>>,
    deadline_after: Duration,
    /// Told when the whole body has been read: the upstream's response
    /// timeout starts then, not while the client is still uploading.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RequestBody {
    /// The body, and a receiver that resolves once it has been sent whole
    /// (or errs if it never will be).
    pub fn new(inner: impl ClientBody, limits: BodyLimits) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (done, sent) = tokio::sync::oneshot::channel();
        let mut body = Self {
            inner: Some(inner.into_source()),
            buffered: None,
            remaining: limits.max,
            idle: limits.idle,
            timer: None,
            timer_armed: false,
            deadline: None,
            deadline_after: limits.deadline,
            done: Some(done),
        };
        body.signal_if_done();
        (body, sent)
    }

    /// A body already read whole.
    pub fn buffered(bytes: Bytes) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (done, sent) = tokio::sync::oneshot::channel();
        let _ = done.send(());
        let body = Self {
            inner: None,
            buffered: (!bytes.is_empty()).then_some(bytes),
            remaining: None,
            idle: Duration::ZERO,
            timer: None,
            timer_armed: false,
            deadline: None,
            deadline_after: Duration::ZERO,
            done: None,
        };
        (body, sent)
    }

    /// Reads a whole body within `limits` (for signing its digest).
    pub async fn read_whole(inner: impl ClientBody, limits: BodyLimits) -> Result<Bytes, BodyError> {
        let (body, _) = Self::new(inner, limits);
        Ok(body.collect().await?.to_bytes())
    }

    fn signal_if_done(&mut self) {
        if self.inner.as_ref().is_some_and(Source::is_end_stream) {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(this.buffered.take().map(|b| Ok(Frame::data(b))));
        };
        let deadline_after = this.deadline_after;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline_after)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::TooSlow(deadline_after))));
        }
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer_armed = false;
                if let (Some(remaining), Some(data)) = (this.remaining.as_mut(), frame.data_ref()) {
                    let len = data.len() as u64;
                    if len > *remaining {
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                    *remaining -= len;
                }
                this.signal_if_done();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => {
                if let Some(done) = this.done.take() {
                    let _ = done.send(());
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.timer_armed {
                    let deadline = Instant::now() + this.idle;
                    match this.timer.as_mut() {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    this.timer_armed = true;
                }
                if let Some(timer) = this.timer.as_mut() {
                    ready!(timer.as_mut().poll(cx));
                }
                Poll::Ready(Some(Err(BodyError::Stalled(this.idle))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.is_end_stream(),
            None => self.buffered.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, &self.buffered) {
            (Some(inner), _) => inner.size_hint(),
            (None, Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}

/// Where a connection goes back once its response has been read whole: the
/// upstream's pool. A trait so this module needs no upstream types.
pub trait ConnectionPool: Send + Sync {
    fn put_back(&self, sender: SendRequest<RequestBody>);
}

/// A checked-out upstream connection, given back when its response body
/// has been read to the end.
pub struct Lease {
    sender: SendRequest<RequestBody>,
    pool: Arc<dyn ConnectionPool>,
}

impl Lease {
    pub fn new(sender: SendRequest<RequestBody>, pool: Arc<dyn ConnectionPool>) -> Self {
        Self { sender, pool }
    }

    fn release(self) {
        self.pool.put_back(self.sender);
    }
}

/// A response body from a pooled upstream connection. When it has been read
/// to the end, the connection goes back to the pool; dropped early, the
/// connection is closed (its state is unknown).
pub struct PooledBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    pub fn new(inner: Incoming, lease: Option<Lease>) -> Self {
        let mut body = Self { inner, lease };
        body.release_if_done();
        body
    }

    fn release_if_done(&mut self) {
        if self.inner.is_end_stream() {
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(lease) = this.lease.take() {
                    lease.release();
                }
            }
            Poll::Ready(Some(Ok(_))) => this.release_if_done(),
            _ => {}
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

/// What doorward answers with: a streamed upstream body or its own small
/// page.
pub enum ResponseBody {
    Upstream(PooledBody),
    /// An open-ended upstream body, tied to the admission it was let
    /// through under: once that no longer holds, the body ends with an
    /// error (HTTP/1.1: the connection closes; HTTP/2: the stream is
    /// reset), never with a clean end the client would take as complete.
    Watched(PooledBody, Registration),
    Full(Option<Bytes>),
}

/// A watched body's admission ended.
#[derive(Debug, thiserror::Error)]
#[error("the admission this response was sent under no longer holds")]
pub struct AdmissionEnded;

impl ResponseBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Watched(body, registration) => {
                if registration.poll_cancelled(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(AdmissionEnded))));
                }
                Pin::new(body).poll_frame(cx).map_err(Into::into)
            }
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) | Self::Watched(body, _) => body.is_end_stream(),
            Self::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream(body) | Self::Watched(body, _) => body.size_hint(),
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
        }
    }
}
