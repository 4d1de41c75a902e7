//! Reads a new connection's first request head into a small buffer of our
//! own before hyper sees the connection.
//!
//! hyper gives every HTTP/1.1 connection an 8 KiB read buffer and an 8 KiB
//! write buffer as soon as it starts parsing, and our per-connection state
//! (task, protocol futures) is several KiB more. A flood of clients that
//! send half a head and stop would hold all of that for the whole
//! header-read timeout. Until the head is complete a connection here costs
//! only what it has sent (the buffer starts at 512 bytes and doubles).
//! Sniffing the h2c preface works the same: it ends in an empty line too.
//!
//! A parked HTTP/1.1 connection (see `conn_io`) waits for its next request
//! head the same way, with the bytes hyper had read of it already.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

const FIRST_BUFFER: usize = 512;

/// How reading the first head ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstHead {
    /// The head is complete (or the buffer reached `max` bytes, which
    /// hyper answers with 431): serve it.
    Ready,
    /// The client closed before completing a head.
    Closed,
}

/// The start of the HTTP/2 connection preface up to its first empty line,
/// which is where [`read_first_head`] stops.
const H2_PREFACE_HEAD: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";

/// Reads from `io` into `buf` until it holds the end of a request head (an
/// empty line, LF or CRLF) or `max` bytes. `buf` may hold the start of the
/// head already. The caller bounds the time.
pub async fn read_first_head<T: AsyncRead + Unpin>(io: &mut T, buf: &mut Vec<u8>, max: usize) -> io::Result<FirstHead> {
    if !buf.is_empty() && (has_empty_line(buf) || buf.len() >= max) {
        return Ok(FirstHead::Ready);
    }
    let mut searched: usize = buf.len();
    loop {
        if read_more(io, buf, max).await? == 0 {
            return Ok(FirstHead::Closed);
        }
        // An empty line can straddle two reads: look back three bytes.
        let from = searched.saturating_sub(2);
        if has_empty_line(&buf[from..]) || buf.len() >= max {
            return Ok(FirstHead::Ready);
        }
        searched = buf.len();
    }
}

/// One read into `buf`, which grows only when full (from 512 bytes,
/// doubling, never past `max`); 0 when the client closed.
pub async fn read_more<T: AsyncRead + Unpin>(io: &mut T, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    if buf.len() == buf.capacity() {
        let more = buf
            .capacity()
            .max(FIRST_BUFFER)
            .min(max.saturating_sub(buf.len()).max(1));
        buf.reserve_exact(more);
    }
    io.read_buf(buf).await
}

/// True if a head read by [`read_first_head`] is the h2c (prior knowledge)
/// preface rather than an HTTP/1.1 request.
pub fn is_h2_preface(head: &[u8]) -> bool {
    head.starts_with(H2_PREFACE_HEAD)
}

/// True if `bytes` holds `\n\n` or `\n\r\n` (httparse takes either line
/// ending).
fn has_empty_line(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, w)| w == b"\n\n" || (w == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// A connection whose first bytes were already read: they are read again
/// first, then the connection itself. Writes go straight through.
pub struct Prefixed<T> {
    prefix: Vec<u8>,
    read: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub fn new(prefix: Vec<u8>, inner: T) -> Self {
        Self { prefix, read: 0, inner }
    }

    /// The bytes still to be read again.
    pub fn prefix(&self) -> &[u8] {
        self.prefix.get(self.read..).unwrap_or_default()
    }

    /// Replaces what is read again first (a parked connection's next head).
    pub fn set_prefix(&mut self, prefix: Vec<u8>) {
        self.prefix = prefix;
        self.read = 0;
    }

    /// The connection below, for reading past the prefix (a parked
    /// connection waiting for its next head).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read < this.prefix.len() {
            let rest = &this.prefix[this.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read += n;
            if this.read == this.prefix.len() {
                // hyper has copied it: free the buffer for the connection's
                // remaining life.
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_split_across_reads_is_found_and_replayed_whole() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = server;
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let end = read_first_head(&mut server, &mut buf, 65536).await.expect("read");
            (end, buf, server)
        });
        use tokio::io::AsyncWriteExt;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r")
            .await
            .expect("write");
        tokio::task::yield_now().await;
        client.write_all(b"\nbody").await.expect("write");
        let (end, buf, server) = reader.await.expect("join");
        assert_eq!(end, FirstHead::Ready);
        let mut replay = Prefixed::new(buf, server);
        drop(client);
        let mut all = Vec::new();
        replay.read_to_end(&mut all).await.expect("replay");
        assert_eq!(all, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody");
    }

    #[tokio::test]
    async fn a_head_that_never_ends_stops_at_the_limit_or_on_close() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[b'x'; 3000]).await.expect("write");
        let mut buf = Vec::new();
        assert_eq!(
            read_first_head(&mut server, &mut buf, 1000).await.expect("read"),
            FirstHead::Ready
        );
        assert!(buf.len() >= 1000 && buf.len() < 3000, "{}", buf.len());

        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        drop(client);
        let mut buf = Vec::new();
        assert_eq!(
            read_first_head(&mut server, &mut buf, 1000).await.expect("read"),
            FirstHead::Closed
        );
    }

    #[tokio::test]
    async fn a_head_already_buffered_is_ready_without_reading_and_a_partial_one_is_completed() {
        // A client that sends nothing more: a read would wait for ever.
        let (_client, mut server) = tokio::io::duplex(64);
        let mut buf = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(
            read_first_head(&mut server, &mut buf, 1000).await.expect("read"),
            FirstHead::Ready
        );

        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(b"\n").await.expect("write");
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r".to_vec();
        assert_eq!(
            read_first_head(&mut server, &mut buf, 1000).await.expect("read"),
            FirstHead::Ready
        );
        assert_eq!(buf, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn the_h2c_preface_is_told_from_an_http1_head() {
        assert!(is_h2_preface(b"PRI * HTTP/2.0\r\n\r\n"));
        assert!(!is_h2_preface(b"PRI / HTTP/1.1\r\n\r\n"));
        assert!(!is_h2_preface(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    }

    #[test]
    fn empty_lines_in_either_ending_count_and_single_line_ends_do_not() {
        assert!(has_empty_line(b"a\r\n\r\n"));
        assert!(has_empty_line(b"a\n\n"));
        assert!(has_empty_line(b"a\n\r\n"));
        assert!(!has_empty_line(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!has_empty_line(b"a\r\n\r"));
    }
}
