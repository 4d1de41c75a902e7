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
    /// `[admin] listen`'s address, when set.
    pub admin_addr: Option<SocketAddr>,
    /// The swappable request path (in-process reloads).
    pub gateway: doorward::reload::SharedGateway,
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
        let admin_addr = server.admin_addr();
        let gateway = server.shared_gateway();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            scim_addr,
            admin_addr,
            gateway,
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

/// Reads one request head from a raw test upstream's connection: `buf`
/// keeps what came after it (a body, a pipelined request). None when the
/// client closed or failed first.
pub async fn read_request_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..at + 4]).into_owned();
            buf.drain(..at + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 16384];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
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
