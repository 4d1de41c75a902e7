//! Protocol switches: `Upgrade: h2c` never reaches the upstream (an h2c
//! connection to it would carry requests doorward never saw), and a `101`
//! the upstream should not have sent (to a request that asked for no
//! upgrade, or with a `Sec-WebSocket-Accept` that does not answer the key)
//! is a 502, never a tunnel.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{raw, LogCapture, Proxy, Upstream};

/// What the fake upstream writes after its `101`: if the client ever sees
/// it, doorward opened a tunnel.
const TUNNEL_BYTES: &str = "BYTES-FROM-INSIDE-THE-TUNNEL";
/// RFC 6455's example key and the accept value that answers it.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A raw-TCP upstream that answers every request head with `answer` (then
/// the tunnel bytes) whatever it asked, and records the heads.
struct ForgingUpstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ForgingUpstream {
    async fn start(answer: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heads);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let log = Arc::clone(&log);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                        match tcp.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    log.lock()
                        .expect("heads")
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = tcp.write_all(answer.as_bytes()).await;
                    let _ = tcp.write_all(TUNNEL_BYTES.as_bytes()).await;
                    // Then keep the "tunnel" open a moment, as a real one would.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                });
            }
        });
        Self { addr, heads, task }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }
}

impl Drop for ForgingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one response head, then its `Content-Length` body (a 101 has
/// none), within five seconds.
async fn read_response(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let read = async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(tcp.read(&mut byte).await.expect("read"), 1, "closed mid-head: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|n| n.trim().to_string())
            })
            .map_or(0, |n| n.parse::<usize>().expect("content-length"));
        let mut body = vec![0u8; length];
        tcp.read_exact(&mut body).await.expect("body");
        (head, body)
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a response within 5 s")
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Whatever arrives on `tcp` within `wait` (or until it closes).
async fn drain(tcp: &mut TcpStream, wait: Duration) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

fn public_route(upstream: &str) -> String {
    Proxy::route(upstream, "public = [\"/\"]")
}

fn websocket_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_h2c_upgrade_reaches_the_upstream_as_a_plain_request() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/public/\"]")).await;
    let request = "GET /public/x HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
                   Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let response = raw(proxy.addr, request).await;
    assert_eq!(response.status, 200, "no switch: {}", response.head);
    let seen = upstream.last();
    assert_eq!(seen.target, "/public/x");
    for name in ["upgrade", "http2-settings"] {
        assert!(
            seen.headers_folding_to(name).is_empty(),
            "{name} reached the upstream: {:?}",
            seen.headers
        );
    }
    assert!(
        seen.header("connection")
            .is_none_or(|c| !c.to_ascii_lowercase().contains("upgrade")),
        "{:?}",
        seen.header("connection")
    );
    // The same with h2c listed second, or in another case.
    let request = "GET /public/y HTTP/1.1\r\nHost: app.test\r\nConnection: upgrade, close\r\n\
                   Upgrade: H2C, websocket\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    let seen = upstream.last();
    assert!(seen.headers_folding_to("upgrade").is_empty(), "{:?}", seen.headers);
    assert!(
        seen.headers_folding_to("http2-settings").is_empty(),
        "{:?}",
        seen.headers
    );
}

#[tokio::test]
async fn a_101_to_a_request_that_asked_for_no_upgrade_is_a_502_not_a_tunnel() {
    let log = LogCapture::start("doorward=warn");
    let forger = ForgingUpstream::start(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".into(),
    )
    .await;
    let proxy = Proxy::start(&public_route(&format!("http://{}", forger.addr))).await;
    let response = raw(
        proxy.addr,
        "GET /plain HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 502, "{}", response.head);
    assert!(!response.body.contains(TUNNEL_BYTES), "{}", response.body);
    assert_eq!(forger.heads().len(), 1, "the request did reach the upstream");
    let logged = log.text();
    assert!(logged.contains("the upstream switched protocols unasked"), "{logged}");
}

#[tokio::test]
async fn a_websocket_101_with_a_wrong_accept_is_a_502_not_a_tunnel() {
    let log = LogCapture::start("doorward=warn");
    let forged = ForgingUpstream::start(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: Zm9yZ2VkLWFjY2VwdC12YWx1ZQ==\r\n\r\n"
            .into(),
    )
    .await;
    let proxy = Proxy::start(&public_route(&format!("http://{}", forged.addr))).await;
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(websocket_request("/ws").as_bytes()).await.expect("send");
    let (head, body) = read_response(&mut tcp).await;
    assert_eq!(status_of(&head), 502, "{head}");
    assert!(!String::from_utf8_lossy(&body).contains(TUNNEL_BYTES));
    let logged = log.text();
    assert!(
        logged.contains("Sec-WebSocket-Accept does not match the key"),
        "{logged}"
    );
    let heads = forged.heads();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].to_ascii_lowercase().contains("upgrade: websocket"),
        "the upgrade was forwarded: {}",
        heads[0]
    );
    // The connection is still plain HTTP, not a pipe to the upstream: the
    // next request gets a response of its own, and no tunnel bytes ever
    // come through.
    tcp.write_all(b"GET /next HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let rest = drain(&mut tcp, Duration::from_secs(5)).await;
    assert!(rest.starts_with("HTTP/1.1 502 "), "{rest}");
    assert!(!rest.contains(TUNNEL_BYTES), "{rest}");

    // The same upstream answering the key correctly does get a tunnel:
    // the 502 above is the accept check, nothing else.
    let honest = ForgingUpstream::start(format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {WS_ACCEPT}\r\n\r\n"
    ))
    .await;
    let proxy = Proxy::start(&public_route(&format!("http://{}", honest.addr))).await;
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(websocket_request("/ws").as_bytes()).await.expect("send");
    let (head, _) = read_response(&mut tcp).await;
    assert_eq!(status_of(&head), 101, "{head}");
    let tunnel = drain(&mut tcp, Duration::from_secs(2)).await;
    assert!(tunnel.contains(TUNNEL_BYTES), "{tunnel:?}");
}
