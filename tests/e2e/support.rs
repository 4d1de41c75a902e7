//! Test scenario pieces: a real upstream HTTP server, doorward itself, and
//! small clients, all on 127.0.0.1 port 0. Everything started here stops
//! when its handle drops.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the upstream received, as it received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The doorward-side address of the connection this came on.
    pub peer: SocketAddr,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Recorded for `/relay` only (other paths stream their bodies).
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header whose name folds (case, `_` as `-`) to `name`.
    pub fn headers_folding_to(&self, name: &str) -> Vec<&(String, String)> {
        let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
        self.headers.iter().filter(|(n, _)| fold(n) == fold(name)).collect()
    }
}

/// A real HTTP/1.1 + h2c server standing in for the app behind doorward.
///
/// - `/slow/{ms}`: answers after a delay
/// - `/download/{bytes}`: streams that many bytes
/// - `/upload`: reads the whole body, answers with its length
/// - `/hop`: answers with hop-by-hop headers that must not reach the client
/// - anything else: 200 with the request echoed as JSON
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = service_fn(move |req| upstream_answer(req, peer, Arc::clone(&log)));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn last(&self) -> Seen {
        self.requests().pop().expect("the upstream received a request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn upstream_answer(
    req: Request<Incoming>,
    peer: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<TestBody>, Infallible> {
    let target = req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
    let mut seen = Seen {
        peer,
        method: req.method().to_string(),
        target: target.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::new(),
    };
    let path = req.uri().path().to_string();
    if path == "/relay" {
        let body = read_body(req).await;
        seen.body = String::from_utf8_lossy(&body).into_owned();
        log.lock().expect("seen lock").push(seen);
        return Ok(text(StatusCode::OK, "relayed"));
    }
    log.lock().expect("seen lock").push(seen.clone());
    if let Some(ms) = path.strip_prefix("/slow/") {
        let ms: u64 = ms.parse().unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(text(StatusCode::OK, "slow done"));
    }
    if let Some(n) = path.strip_prefix("/download/") {
        let n: u64 = n.parse().unwrap_or(0);
        return Ok(Response::new(Repeat::new(n).boxed()));
    }
    if path == "/upload" {
        let mut body = req.into_body();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "broken body")),
            }
        }
        return Ok(text(StatusCode::OK, &total.to_string()));
    }
    if path == "/claims/groups" {
        // A distributed-claims source (group overage): answers only to a
        // bearer token, like Graph does.
        if seen.header("authorization").is_some_and(|a| a.starts_with("Bearer ")) {
            let mut response = text(StatusCode::OK, r#"{"groups":["from-source-a","from-source-b"]}"#);
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().expect("value"));
            return Ok(response);
        }
        return Ok(text(StatusCode::UNAUTHORIZED, "no token"));
    }
    if path == "/hop" {
        let mut response = text(StatusCode::OK, "hop");
        let h = response.headers_mut();
        h.insert("connection", "x-hop-secret".parse().expect("value"));
        h.insert("x-hop-secret", "1".parse().expect("value"));
        h.insert("keep-alive", "timeout=5".parse().expect("value"));
        h.insert("x-end-to-end", "kept".parse().expect("value"));
        return Ok(response);
    }
    let body = read_body(req).await;
    let echo = serde_json::json!({
        "method": seen.method,
        "target": target,
        "headers": seen.headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = text(StatusCode::OK, &echo.to_string());
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("value"));
    Ok(response)
}

/// The whole request body (empty if it broke).
async fn read_body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

fn text(status: StatusCode, body: &str) -> Response<TestBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
}

/// A body of `n` bytes made on the fly in 64 KiB chunks: big transfers
/// without big buffers on the test side.
pub struct Repeat {
    remaining: u64,
    chunk: Bytes,
}

impl Repeat {
    pub fn new(n: u64) -> Self {
        Self {
            remaining: n,
            chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        }
    }
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// A WebSocket echo server (tokio-tungstenite), the app side of an upgrade.
pub struct WsEcho {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl WsEcho {
    pub async fn start() -> Self {
        use futures_util::{SinkExt, StreamExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ws");
        let addr = listener.local_addr().expect("ws addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for WsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// doorward running in this process, on a port of its own choosing.
pub struct Proxy {
    pub addr: SocketAddr,
    /// `[scim] listen`'s address, when set.
    pub scim_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts doorward with `config` (TOML). `[server] listen` is forced to
    /// 127.0.0.1:0 unless the text sets it.
    pub async fn start(config: &str) -> Self {
        let text = if config.contains("listen") {
            config.to_string()
        } else if config.contains("[server]") {
            config.replacen("[server]", "[server]\nlisten = \"127.0.0.1:0\"", 1)
        } else {
            format!("[server]\nlisten = \"127.0.0.1:0\"\n{config}")
        };
        let config = doorward::config::parse_str(&text, "test.toml").unwrap_or_else(|e| panic!("test config: {e}"));
        let server = doorward::server::Server::bind(&config).await.expect("doorward binds");
        Self::run(server)
    }

    /// Starts doorward on a listener bound beforehand, for configs that
    /// must name their own port (public_url, IdP redirect URIs).
    pub async fn start_on(config: &str, listener: TcpListener) -> Self {
        Self::start_with(config, listener, doorward::clock::Clock::system()).await
    }

    /// Like [`Proxy::start_on`], with doorward reading time from `clock`
    /// (a manual clock moves only when the test says).
    pub async fn start_with(config: &str, listener: TcpListener, clock: doorward::clock::Clock) -> Self {
        let config = doorward::config::parse_str(config, "test.toml").unwrap_or_else(|e| panic!("test config: {e}"));
        let options = doorward::server::ServerOptions { clock };
        let server = doorward::server::Server::with_options(&config, listener, options)
            .await
            .expect("doorward starts");
        Self::run(server)
    }

    fn run(server: doorward::server::Server) -> Self {
        // DOORWARD_TEST_LOG=debug shows doorward's log in test output.
        if let Ok(level) = std::env::var("DOORWARD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                .with_test_writer()
                .try_init();
        }
        let addr = server.local_addr().expect("doorward addr");
        let scim_addr = server.scim_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            scim_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A route config fronting `upstream`, with `extra` lines appended.
    pub fn route(upstream: &str, extra: &str) -> String {
        format!("[[route]]\nname = \"app\"\nupstream = \"{upstream}\"\n{extra}\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Begins a graceful shutdown; the returned handle resolves when the
    /// drain is over.
    pub fn shutdown(&mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response read by the raw client.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends bytes exactly as given (no client library tidying them up) and
/// reads until the server closes. Requests should say `Connection: close`.
pub async fn raw(addr: SocketAddr, request: &str) -> RawResponse {
    raw_bytes(addr, request.as_bytes()).await
}

/// [`raw`] for requests that are not UTF-8 (obs-text in header values).
pub async fn raw_bytes(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("send");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    read.expect("response within 10s").expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    RawResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A plain HTTP/1.1 GET through a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    send(addr, "GET", path, headers, Bytes::new()).await
}

/// One HTTP/1.1 request through a fresh connection (hyper client).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "app.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body)).expect("request");
    let response = sender.send_request(req).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

pub fn echo_json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not the echo JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A config file for the real binary; deleted when dropped.
pub fn write_config(text: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp config");
    file.write_all(text.as_bytes()).expect("write config");
    file
}

/// Reads the binary's JSON log until it says where it listens.
pub fn listening_addr(stdout: &mut impl std::io::BufRead) -> SocketAddr {
    let mut line = String::new();
    for _ in 0..50 {
        line.clear();
        if stdout.read_line(&mut line).expect("read log") == 0 {
            break;
        }
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(addr) = parsed["addr"].as_str() {
            return addr.parse().expect("addr");
        }
    }
    panic!("doorward never said where it listens (last line: {line})");
}

/// How long the real binary may take to start serving.
const CHILD_START_DEADLINE: Duration = Duration::from_secs(30);
/// Lines of the child's output kept for failure messages.
const CHILD_TAIL_LINES: usize = 40;

/// The last lines a child wrote (stdout and stderr, interleaved as read).
#[derive(Clone, Default)]
pub struct OutputTail(Arc<Mutex<std::collections::VecDeque<String>>>);

impl OutputTail {
    /// Drains `pipe` on a thread of its own (a full pipe would block the
    /// child's writes), keeping the last lines.
    fn follow(&self, pipe: impl std::io::Read + Send + 'static, label: &'static str) {
        use std::io::BufRead;
        let tail = self.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut lines = tail.0.lock().expect("tail lock");
                if lines.len() == CHILD_TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(format!("{label}: {line}"));
            }
        });
    }

    pub fn text(&self) -> String {
        let lines = self.0.lock().expect("tail lock");
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// The TCP sockets process `pid` is listening on, read from /proc (so
/// finding the port does not depend on the log level or format).
pub fn listening_sockets(pid: u32) -> Vec<SocketAddr> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut found = Vec::new();
    for (table, v6) in [("tcp", false), ("tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode is the 10th field.
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            if let Some(addr) = proc_net_addr(fields[1], v6) {
                found.push(addr);
            }
        }
    }
    found
}

/// `0100007F:1F90` (little-endian words, as /proc/net/tcp{,6} print them).
fn proc_net_addr(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip: std::net::IpAddr = if v6 {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into()
    } else {
        std::net::Ipv4Addr::from(words.first()?.to_be_bytes()).into()
    };
    let ip = match ip {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        other => other,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether `addr` answers `GET /_doorward/healthz` with 200 (blocking,
/// bounded: for use before any runtime-bound client is at hand).
fn healthz_ok(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /_doorward/healthz HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    if tcp.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The real `doorward serve` binary as a child process, at any log level or
/// format. Killed and reaped on drop, panics included.
pub struct ChildDoorward {
    pub addr: SocketAddr,
    child: std::process::Child,
    /// The last lines of its output, for failure messages.
    pub output: OutputTail,
}

impl ChildDoorward {
    /// Starts `doorward serve -c config` and waits (at most 30 s) until it
    /// listens and its health check answers. The port is read from /proc,
    /// not from the log, so a quiet log level does not hang the test; a
    /// child that exits or never serves fails with the tail of its output.
    pub fn serve(config: &std::path::Path) -> Self {
        Self::serve_with(config, |_| {})
    }

    /// Like [`ChildDoorward::serve`], letting `adjust` change the command
    /// first (environment, resource limits).
    pub fn serve_with(config: &std::path::Path, adjust: impl FnOnce(&mut std::process::Command)) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_doorward"));
        command
            .args(["serve", "-c"])
            .arg(config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        adjust(&mut command);
        let child = command.spawn().expect("start doorward");
        // Guard first, so a doorward that never starts serving is still
        // killed when a panic below unwinds.
        let mut this = Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            child,
            output: OutputTail::default(),
        };
        this.output.follow(this.child.stdout.take().expect("stdout"), "out");
        this.output.follow(this.child.stderr.take().expect("stderr"), "err");
        let deadline = std::time::Instant::now() + CHILD_START_DEADLINE;
        loop {
            if let Ok(Some(status)) = this.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the tail catch up
                panic!(
                    "doorward exited ({status}) before serving; its output ended:\n{}",
                    this.output.text()
                );
            }
            let listening = listening_sockets(this.pid());
            match listening[..] {
                [addr] if healthz_ok(addr) => {
                    this.addr = addr;
                    return this;
                }
                [_, _, ..] => panic!(
                    "doorward listens on several sockets ({listening:?}); ChildDoorward needs one to know \
                     which is the proxy. Its output ended:\n{}",
                    this.output.text()
                ),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "doorward did not serve within {CHILD_START_DEADLINE:?}; its output ended:\n{}",
                this.output.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` figure in KiB, e.g. `VmHWM` (peak RSS).
    pub fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status:\n{status}"))
    }
}

impl Drop for ChildDoorward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// doorward's log lines, captured in memory for as long as this lives.
///
/// The subscriber is the thread's default, not the global one (each test
/// binary has only one of those): `#[tokio::test]` runs on a current-thread
/// runtime, so the in-process doorward's tasks, spawned on that runtime,
/// log into it too. Threads outside the runtime (SQLite's workers) are not
/// captured; `tests/log_secrecy` captures globally for that.
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Starts capturing events that pass `filter` (a tracing filter such
    /// as `"doorward=info"`).
    pub fn start(filter: &str) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedBuffer(Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self { buffer, _guard: guard }
    }

    /// Every line captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("log buffer")).into_owned()
    }
}
