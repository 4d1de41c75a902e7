//! A connection flood against the real binary: what each held connection
//! costs in RSS, that a normal request is still served during it, that
//! silent and half-head connections are closed by the header-read timeout,
//! and that the memory comes back once the flood is over.
//!
//! `DOORWARD_FLOOD_N` changes the connection count (default 2,000) for
//! measuring by hand; the figures are printed either way.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::child::ChildDoorward;
use crate::support::{get, write_config, Proxy, Upstream};

/// What one held connection may cost doorward on average (issue 14).
const MAX_KIB_PER_CONNECTION: f64 = 6.0;
/// After the flood, RSS must come back within this factor of before.
const MAX_RSS_AFTER_FACTOR: f64 = 1.5;
/// Short, so the test sees the timeout act, yet long enough to open the
/// whole flood first on a busy machine.
const HEADER_READ_TIMEOUT_SECS: u64 = 8;

fn flood_size() -> usize {
    std::env::var("DOORWARD_FLOOD_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

/// This process's soft limit on open files (both ends of the flood must
/// fit: the test's sockets here, doorward's in the child).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// Opens `n` connections (`silent`: sending nothing, or else half a
/// request head), a batch at a time, each accepted by doorward (`pid`)
/// before the next: an overflowing listen queue would drop SYNs into
/// second-long retries.
async fn open_flood(addr: SocketAddr, pid: u32, n: usize, silent: bool) -> Vec<(TcpStream, bool)> {
    let fds_before = open_fds(pid);
    let mut conns = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened = futures_util::future::join_all(batch.iter().map(|_| async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect during the flood");
            if !silent {
                tcp.write_all(b"GET /public/flood HTTP/1.1\r\nHost: app.test\r\nX-Half: ")
                    .await
                    .expect("send half a head");
            }
            (tcp, silent)
        }))
        .await;
        conns.extend(opened);
        let want = fds_before + conns.len();
        let deadline = Instant::now() + Duration::from_secs(2);
        while open_fds(pid) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    conns
}

/// Waits for `what` to hold, up to `limit`; true if it did.
async fn eventually(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if what() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    what()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_costs_little_is_timed_out_and_its_memory_comes_back() {
    let n = flood_size();
    let limit = open_files_limit();
    assert!(
        limit >= n + 500,
        "RLIMIT_NOFILE soft limit {limit} is too low for a flood of {n}; raise it (ulimit -n) or set DOORWARD_FLOOD_N"
    );
    let upstream = Upstream::start().await;
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"{HEADER_READ_TIMEOUT_SECS}s\"\n\
         max_connections = {}\n[log]\nformat = \"json\"\n{}",
        n + 100,
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    ));
    let doorward = ChildDoorward::serve(config.path());
    let addr = doorward.addr;
    let pid = doorward.pid();

    // Warm up what every process has after its first requests.
    for _ in 0..20 {
        let (status, _, _) = get(addr, "/public/warm", &[]).await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = doorward.proc_status_kib("VmRSS");
    let fds_before = open_fds(pid);

    let started = Instant::now();
    let mut conns = open_flood(addr, pid, n / 2, true).await;
    let rss_silent = doorward.proc_status_kib("VmRSS");
    conns.extend(open_flood(addr, pid, n - n / 2, false).await);
    let opened_in = started.elapsed();
    // Every connection accepted (held by doorward) before measuring.
    let accepted = eventually(Duration::from_secs(2), || open_fds(pid) >= fds_before + n).await;
    let rss_during = doorward.proc_status_kib("VmRSS");
    let held_at = started.elapsed();
    assert!(
        accepted,
        "doorward holds {} fds, want {}",
        open_fds(pid),
        fds_before + n
    );
    assert!(
        held_at < Duration::from_secs(HEADER_READ_TIMEOUT_SECS),
        "the flood took {held_at:?} to open, past the header-read timeout; the figures would not be of a held flood"
    );

    // A normal request is served during the flood.
    let asked = Instant::now();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), get(addr, "/public/during", &[]))
        .await
        .expect("a normal request during the flood answered within 5 s");
    assert_eq!(status, 200, "a normal request during the flood");
    let served_in = asked.elapsed();

    // Silent and half-head connections alike are closed by the
    // header-read timeout (not the much longer idle timeout).
    let closing = Duration::from_secs(HEADER_READ_TIMEOUT_SECS + 6);
    let mut still_open = (0, 0);
    for (tcp, silent) in &mut conns {
        let mut buf = [0u8; 512];
        let remaining = closing.saturating_sub(started.elapsed());
        let closed = loop {
            match tokio::time::timeout(remaining, tcp.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                // hyper may answer a timed-out head (408) before closing.
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        if !closed {
            if *silent {
                still_open.0 += 1;
            } else {
                still_open.1 += 1;
            }
        }
    }
    let closed_by = started.elapsed();
    drop(conns);

    let back = eventually(Duration::from_secs(30), || {
        doorward.proc_status_kib("VmRSS") as f64 <= rss_before as f64 * MAX_RSS_AFTER_FACTOR
    })
    .await;
    let rss_after = doorward.proc_status_kib("VmRSS");
    let per_conn = rss_during.saturating_sub(rss_before) as f64 / n as f64;
    let per_silent = rss_silent.saturating_sub(rss_before) as f64 / (n / 2) as f64;
    let per_half_head = rss_during.saturating_sub(rss_silent) as f64 / (n - n / 2) as f64;
    eprintln!(
        "flood of {n}: opened in {opened_in:?}; RSS {rss_before} KiB before, {rss_during} KiB held ({per_conn:.2} KiB per \
         connection: {per_silent:.2} silent, {per_half_head:.2} with half a head), {rss_after} KiB after; a request \
         during it served in {served_in:?}; all closed by {closed_by:?}"
    );
    assert_eq!(
        still_open,
        (0, 0),
        "(silent, half-head) connections still open {closing:?} after the flood began"
    );
    assert!(
        per_conn <= MAX_KIB_PER_CONNECTION,
        "{per_conn:.2} KiB per held connection (> {MAX_KIB_PER_CONNECTION})"
    );
    assert!(
        back,
        "RSS {rss_after} KiB 30 s after the flood, more than {MAX_RSS_AFTER_FACTOR}x the {rss_before} KiB before"
    );
    let (status, _, _) = get(addr, "/public/after", &[]).await;
    assert_eq!(status, 200, "served after the flood");
}

/// One keep-alive HTTP/1.1 connection (hyper client) that has been served.
async fn keep_alive(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    assert_eq!(request(&mut sender, "/public/open").await, 200);
    sender
}

async fn request(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    path: &str,
) -> u16 {
    use http_body_util::BodyExt;
    let req = http::Request::get(path)
        .header("host", "app.test")
        .body(http_body_util::Empty::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test]
async fn at_the_connection_cap_new_connections_wait_and_open_ones_keep_working() {
    let log = crate::support::LogCapture::start("doorward=warn");
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&format!(
        "[server]\nmax_connections = 2\n{}",
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    ))
    .await;
    let mut first = keep_alive(proxy.addr).await;
    let second = keep_alive(proxy.addr).await;

    // The third connection is accepted by the kernel but not served.
    let addr = proxy.addr;
    let mut waiting = tokio::spawn(async move { get(addr, "/public/third", &[]).await });
    let early = tokio::time::timeout(Duration::from_millis(700), &mut waiting).await;
    assert!(early.is_err(), "a connection over the cap was served: {early:?}");
    assert_eq!(
        request(&mut first, "/public/again").await,
        200,
        "an open connection keeps working"
    );
    assert!(
        log.text().contains("connection cap reached"),
        "no log line at the cap:\n{}",
        log.text()
    );

    // A slot freed, the waiting connection is served.
    drop(second);
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .expect("join");
    assert_eq!(status, 200);
    assert_eq!(
        upstream
            .requests()
            .iter()
            .filter(|r| r.target == "/public/third")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_served_keep_alive_connections_comes_back_after_they_close() {
    let n = flood_size() / 2;
    let upstream = Upstream::start().await;
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = {}\n[log]\nformat = \"json\"\n{}",
        n + 100,
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    ));
    let doorward = ChildDoorward::serve(config.path());
    let addr = doorward.addr;
    for _ in 0..20 {
        let (status, _, _) = get(addr, "/public/warm", &[]).await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = doorward.proc_status_kib("VmRSS");

    // Each connection is served a request and then held open, idle: hyper
    // now holds its buffers for it.
    let mut held = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(100) {
        held.extend(futures_util::future::join_all(batch.iter().map(|_| keep_alive(addr))).await);
    }
    let rss_held = doorward.proc_status_kib("VmRSS");
    drop(held);

    let back = eventually(Duration::from_secs(30), || {
        doorward.proc_status_kib("VmRSS") as f64 <= rss_before as f64 * MAX_RSS_AFTER_FACTOR
    })
    .await;
    let rss_after = doorward.proc_status_kib("VmRSS");
    eprintln!(
        "{n} served keep-alive connections: RSS {rss_before} KiB before, {rss_held} KiB held ({:.2} KiB per \
         connection), {rss_after} KiB after they closed",
        rss_held.saturating_sub(rss_before) as f64 / n as f64
    );
    assert!(
        back,
        "RSS {rss_after} KiB 30 s after {n} keep-alive connections closed, more than {MAX_RSS_AFTER_FACTOR}x the \
         {rss_before} KiB before"
    );
}
