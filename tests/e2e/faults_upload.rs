//! An upstream that resets while the client is still uploading a large
//! body: the uploader gets a clean 502 (or a closed connection), never
//! another request's bytes; the pool drops that upstream connection and
//! the requests around and after it are answered. (A reset mid-response is
//! in faults.rs.)

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{get, read_request_head, Proxy, Repeat};

/// The upload doorward is sent (far more than the upstream reads).
const UPLOAD: u64 = 64 << 20;
/// What the upstream reads of it before resetting.
const READ_BEFORE_RESET: usize = 256 * 1024;

/// An upstream on raw sockets: `POST /reset-upload` reads 256 KiB of the
/// body and resets the connection (RST) without answering; anything else
/// reads its body (Content-Length) and answers `own:<path>` on a keep-alive
/// connection. Records the doorward-side address of every connection.
struct ResettingUpstream {
    addr: SocketAddr,
    /// Connections by doorward-side address; `true` for the reset ones.
    connections: Arc<Mutex<Vec<(SocketAddr, bool)>>>,
    task: JoinHandle<()>,
}

impl ResettingUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                tokio::spawn(serve(tcp, peer, Arc::clone(&seen)));
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    fn reset_peers(&self) -> HashSet<SocketAddr> {
        let connections = self.connections.lock().expect("connections");
        connections
            .iter()
            .filter(|(_, reset)| *reset)
            .map(|(a, _)| *a)
            .collect()
    }

    fn peers(&self) -> Vec<SocketAddr> {
        self.connections
            .lock()
            .expect("connections")
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }
}

impl Drop for ResettingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut tcp: TcpStream, peer: SocketAddr, seen: Arc<Mutex<Vec<(SocketAddr, bool)>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_request_head(&mut tcp, &mut buf).await else {
            return;
        };
        let head = head.to_ascii_lowercase();
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let reset = path == "/reset-upload";
        seen.lock().expect("connections").push((peer, reset));
        let wanted = if reset { READ_BEFORE_RESET } else { length };
        while buf.len() < wanted {
            let mut chunk = [0u8; 65536];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if reset {
            let _ = tcp.set_zero_linger();
            return;
        }
        buf.drain(..wanted);
        let body = format!("own:{path}");
        let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Uploads `UPLOAD` bytes to `/reset-upload`: the status and body the
/// client got, or `None` if doorward closed the connection first.
async fn upload(addr: SocketAddr) -> Option<(u16, Bytes)> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = Request::post("/reset-upload")
        .header("host", "app.test")
        .header("content-length", UPLOAD.to_string())
        .body(Repeat::new(UPLOAD))
        .expect("request");
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_mid_upload_gives_that_client_a_clean_502_and_others_their_own_answers() {
    let upstream = ResettingUpstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&format!("http://{}", upstream.addr), "public = [\"/\"]")).await;
    let addr = proxy.addr;
    // Warm the pool, so pooled connections sit next to the one reset.
    for i in 0..3 {
        let (status, _, body) = get(addr, &format!("/warm{i}"), &[]).await;
        assert_eq!((status.as_u16(), &body[..]), (200, format!("own:/warm{i}").as_bytes()));
    }

    let others: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                let body = Bytes::from(vec![b'o'; 10_000]);
                crate::support::send(addr, "POST", &format!("/other{i}"), &[], body).await
            })
        })
        .collect();
    let answer = tokio::time::timeout(Duration::from_secs(30), upload(addr))
        .await
        .expect("the uploader is not left hanging");
    match &answer {
        Some((status, body)) => {
            assert_eq!(*status, 502, "{}", String::from_utf8_lossy(body));
            assert!(
                !body.windows(4).any(|w| w == b"own:"),
                "another request's answer: {}",
                String::from_utf8_lossy(body)
            );
        }
        None => eprintln!("upload reset: doorward closed the uploader's connection"),
    }
    for (i, other) in others.into_iter().enumerate() {
        let (status, _, body) = other.await.expect("join");
        assert_eq!(
            (status.as_u16(), String::from_utf8_lossy(&body).into_owned()),
            (200, format!("own:/other{i}")),
            "a concurrent request got its own answer"
        );
    }
    let reset = upstream.reset_peers();
    assert_eq!(reset.len(), 1, "one upstream connection was reset");

    // The reset connection is gone from the pool: the requests after it
    // are answered, none on that connection.
    let before = upstream.peers().len();
    for i in 0..5 {
        let (status, _, body) = get(addr, &format!("/after{i}"), &[]).await;
        assert_eq!((status.as_u16(), &body[..]), (200, format!("own:/after{i}").as_bytes()));
    }
    let later = &upstream.peers()[before..];
    assert_eq!(later.len(), 5);
    assert!(later.iter().all(|p| !reset.contains(p)), "{later:?} reused {reset:?}");
}
