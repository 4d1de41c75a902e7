//! HTTP/2 abuse stays bounded: a rapid-reset flood (CVE-2023-44487) and a
//! CONTINUATION flood get the connection closed with GOAWAY, doorward's
//! memory does not grow with what the attacker sends, and other clients
//! are served throughout. And h2's own Host trick: an `:authority` that a
//! `Host` header contradicts.
//!
//! Client libraries will not send these, so the frames are written by hand
//! over plain TCP with h2c prior knowledge (RFC 9113 §3.3, §4.1), against
//! the real binary so its peak memory can be read from /proc.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::child::ChildDoorward;
use crate::support::{get, write_config, Proxy, Upstream};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: 9-byte header (24-bit length, type, flags, stream id), then
/// the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("small frame");
    let mut out = length.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend((stream & 0x7fff_ffff).to_be_bytes());
    out.extend(payload);
    out
}

/// An HPACK string literal without Huffman coding (RFC 7541 §5.2).
fn hpack_string(text: &[u8]) -> Vec<u8> {
    let mut out = hpack_int(0x00, 7, text.len());
    out.extend(text);
    out
}

/// An HPACK integer with an `n`-bit prefix after `first`'s high bits (§5.1).
fn hpack_int(first: u8, n: u32, value: usize) -> Vec<u8> {
    let max = (1usize << n) - 1;
    if value < max {
        return vec![first | u8::try_from(value).expect("fits")];
    }
    let mut out = vec![first | u8::try_from(max).expect("fits")];
    let mut rest = value - max;
    while rest >= 128 {
        out.push(u8::try_from(rest % 128).expect("fits") | 0x80);
        rest /= 128;
    }
    out.push(u8::try_from(rest).expect("fits"));
    out
}

/// `GET http://app.test{path}`: the static table for :method, :scheme and
/// the names of :path and :authority (literals without indexing, §6.2.2).
fn request_block(path: &str) -> Vec<u8> {
    let mut out = vec![0x82, 0x86];
    out.push(0x04);
    out.extend(hpack_string(path.as_bytes()));
    out.push(0x01);
    out.extend(hpack_string(b"app.test"));
    out
}

/// A hand-driven h2c client: frames out through the write half, frames in
/// through a reader task, so a GOAWAY is seen even while still sending.
struct RawH2 {
    write: OwnedWriteHalf,
    frames: mpsc::UnboundedReceiver<(u8, u8, u32, Vec<u8>)>,
    goaway: Option<(u32, u32)>,
}

impl RawH2 {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut read, mut write) = tcp.into_split();
        write.write_all(PREFACE).await.expect("preface");
        write.write_all(&frame(SETTINGS, 0, 0, &[])).await.expect("settings");
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let mut head = [0u8; 9];
                if read.read_exact(&mut head).await.is_err() {
                    return;
                }
                let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                let mut payload = vec![0u8; length];
                if read.read_exact(&mut payload).await.is_err() || tx.send((head[3], head[4], stream, payload)).is_err()
                {
                    return;
                }
            }
        });
        Self {
            write,
            frames,
            goaway: None,
        }
    }

    fn note(&mut self, (kind, _, _, payload): &(u8, u8, u32, Vec<u8>)) {
        if *kind == GOAWAY && payload.len() >= 8 && self.goaway.is_none() {
            let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
            let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
            self.goaway = Some((last, code));
        }
    }

    /// Takes in what has arrived, without waiting.
    fn poll_frames(&mut self) {
        while let Ok(frame) = self.frames.try_recv() {
            self.note(&frame);
        }
    }

    /// Sends `bytes` unless the server already said GOAWAY; false once it
    /// has (or the connection is gone).
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.poll_frames();
        self.goaway.is_none() && self.write.write_all(bytes).await.is_ok()
    }

    /// Waits for the GOAWAY, then for the connection to close.
    async fn goaway_then_close(&mut self, within: Duration) -> (u32, u32) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.frames.recv()).await {
                Ok(Some(frame)) => self.note(&frame),
                Ok(None) => break,
                Err(_) => panic!(
                    "the connection was still open {within:?} later (GOAWAY: {:?})",
                    self.goaway
                ),
            }
        }
        self.goaway.expect("a GOAWAY before the connection closed")
    }
}

/// The real binary in front of a public route, for /proc figures.
async fn doorward() -> (Upstream, ChildDoorward, tempfile::NamedTempFile) {
    let upstream = Upstream::start().await;
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ));
    let child = ChildDoorward::serve(config.path());
    (upstream, child, config)
}

/// Others are served: a plain HTTP/1.1 request and a well-formed h2 one.
async fn still_serving(addr: SocketAddr) {
    let (status, _, _) = get(addr, "/after", &[]).await;
    assert_eq!(status, 200, "HTTP/1.1 after the flood");
    let mut h2 = RawH2::connect(addr).await;
    assert!(
        h2.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &request_block("/after-h2")
        ))
        .await
    );
    assert_eq!(status_on(&mut h2, 1).await, 200, "h2 after the flood");
}

/// The `:status` of the response HEADERS on `stream` (static-table
/// entries only, which is what hyper sends for these).
async fn status_on(h2: &mut RawH2, stream: u32) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline, h2.frames.recv())
            .await
            .expect("an answer within 5 s")
            .expect("open");
        if frame.0 == HEADERS && frame.2 == stream {
            // RFC 7541 Appendix A: 8 = 200, 12 = 400.
            return match frame.3.first() {
                Some(0x88) => 200,
                Some(0x8c) => 400,
                other => panic!("unexpected :status encoding {other:?}"),
            };
        }
    }
}

#[tokio::test]
async fn an_h2_authority_that_disagrees_with_host_is_refused() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let mut h2 = RawH2::connect(proxy.addr).await;
    // :authority app.test, then a `host: admin.test` header.
    let mut block = request_block("/x");
    block.push(0x00);
    block.extend(hpack_string(b"host"));
    block.extend(hpack_string(b"admin.test"));
    assert!(h2.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &block)).await);
    assert_eq!(status_on(&mut h2, 1).await, 400);
    // The same host in both, in another spelling, is one host.
    let mut block = request_block("/y");
    block.push(0x00);
    block.extend(hpack_string(b"host"));
    block.extend(hpack_string(b"APP.test."));
    assert!(h2.send(&frame(HEADERS, END_STREAM | END_HEADERS, 3, &block)).await);
    assert_eq!(status_on(&mut h2, 3).await, 200);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "only the agreeing request was forwarded");
    assert_eq!(seen[0].target, "/y");
    assert_eq!(seen[0].header("host"), Some("app.test"));
}

#[tokio::test]
async fn a_rapid_reset_flood_gets_goaway_and_others_are_still_served() {
    let (upstream, doorward, _config) = doorward().await;
    let peak_before = doorward.proc_status_kib("VmHWM");
    let mut flood = RawH2::connect(doorward.addr).await;
    // Open a stream and cancel it at once, over and over, many pairs per
    // write: each costs the server work, none waits for an answer.
    let started = Instant::now();
    let mut sent = 0u32;
    'flood: for batch in 0..100u32 {
        let mut bytes = Vec::new();
        for i in 0..100u32 {
            let id = 2 * (batch * 100 + i) + 1;
            bytes.extend(frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                id,
                &request_block("/public/x"),
            ));
            bytes.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        }
        if !flood.send(&bytes).await || started.elapsed() > Duration::from_secs(10) {
            break 'flood;
        }
        sent += 100;
        // 100 streams a millisecond is still a flood; the pause lets the
        // reader see a GOAWAY (this runtime has one thread).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Cut off: GOAWAY, then the connection closes (if it never were, this
    // times out with the connection still open).
    let (_, code) = flood.goaway_then_close(Duration::from_secs(10)).await;
    assert_eq!(code, ENHANCE_YOUR_CALM, "GOAWAY code after {sent} reset streams");
    let forwarded = upstream.requests().len();
    let peak_after = doorward.proc_status_kib("VmHWM");
    eprintln!(
        "rapid reset: cut off after {sent}+ streams in {:?}; {forwarded} forwarded; VmHWM {peak_before} -> {peak_after} KiB",
        started.elapsed()
    );
    assert!(
        peak_after < peak_before + 16 * 1024,
        "VmHWM {peak_before} -> {peak_after} KiB"
    );
    // Cancelled streams cost no upstream requests: at most one window of
    // concurrent streams (100) could have been under way.
    assert!(
        forwarded <= 100,
        "{forwarded} of the cancelled requests reached the upstream"
    );
    still_serving(doorward.addr).await;
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off_without_memory_growth() {
    let (upstream, doorward, _config) = doorward().await;
    let peak_before = doorward.proc_status_kib("VmHWM");
    let mut flood = RawH2::connect(doorward.addr).await;
    // HEADERS without END_HEADERS, ending inside a header whose value
    // claims 64 MiB; then CONTINUATION frames of value bytes that never
    // end the block. Up to 64 MiB in all, for at most 10 s.
    let mut block = request_block("/public/x");
    block.push(0x00);
    block.extend(hpack_string(b"x-flood"));
    block.extend(hpack_int(0x00, 7, 64 << 20));
    assert!(flood.send(&frame(HEADERS, END_STREAM, 1, &block)).await);
    let filler = frame(CONTINUATION, 0, 1, &[b'a'; 16384]);
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < 4096 && started.elapsed() < Duration::from_secs(10) {
        if !flood.send(&filler).await {
            break;
        }
        sent += 1;
        if sent % 8 == 0 {
            // Let a GOAWAY in before piling on more.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (_, code) = flood.goaway_then_close(Duration::from_secs(10)).await;
    assert_eq!(code, ENHANCE_YOUR_CALM, "GOAWAY code after {sent} CONTINUATION frames");
    assert!(sent < 4096, "the flood was never cut off");
    let peak_after = doorward.proc_status_kib("VmHWM");
    eprintln!(
        "CONTINUATION flood: cut off after {sent} frames ({} KiB) in {:?}; VmHWM {peak_before} -> {peak_after} KiB",
        sent * 16,
        started.elapsed()
    );
    assert!(
        peak_after < peak_before + 8 * 1024,
        "VmHWM {peak_before} -> {peak_after} KiB"
    );
    assert!(
        upstream.requests().is_empty(),
        "the endless request never reached the upstream"
    );
    still_serving(doorward.addr).await;
}
