//! The server over real loopback sockets: a kept-alive HTTP/1.1 connection
//! that was parked (handed back from hyper while idle) serves its next
//! requests whole, however they arrive, and still ends at the idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::connection::PARK_AFTER;
use super::Server;

/// An upstream that answers every request on a kept-alive connection with
/// its request line as the body.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let line = head.lines().next().unwrap_or_default().to_owned();
                        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{line}", line.len());
                        if tcp.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let mut chunk = [0u8; 1024];
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// doorward with one public route to `upstream`, on the calling runtime.
async fn doorward(upstream: SocketAddr, idle_timeout: &str) -> SocketAddr {
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nruntime = \"shared\"\nidle_timeout = \"{idle_timeout}\"\n\
         [[route]]\nname = \"a\"\npath_prefix = \"/\"\nupstream = \"http://{upstream}\"\npublic = [\"/\"]\n"
    );
    let config = crate::config::parse_str(&toml, "doorward.toml").expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind doorward");
    let server = Server::with_listener(&config, listener).await.expect("server");
    let addr = server.local_addr().expect("doorward addr");
    tokio::spawn(server.run(std::future::pending()));
    addr
}

/// Reads one response with a content-length body; its body.
async fn response(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            while buf.len() < end + 4 + len {
                read_some(tcp, &mut buf).await;
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            assert_eq!(buf.len(), end + 4 + len, "nothing beyond the response");
            return body;
        }
        read_some(tcp, &mut buf).await;
    }
}

async fn read_some(tcp: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    assert!(n > 0, "doorward closed the connection");
    buf.extend_from_slice(&chunk[..n]);
}

#[tokio::test]
async fn a_parked_connection_serves_its_next_requests_split_or_pipelined() {
    let addr = doorward(upstream().await, "60s").await;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(response(&mut tcp).await, "GET /one HTTP/1.1");

    // Parked; the next head arrives in two pieces.
    tokio::time::sleep(PARK_AFTER + Duration::from_millis(300)).await;
    tcp.write_all(b"GET /two HTTP/1.1\r\nHo").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    tcp.write_all(b"st: a\r\n\r\n").await.expect("write");
    assert_eq!(response(&mut tcp).await, "GET /two HTTP/1.1");

    // Parked again; two pipelined requests in one write.
    tokio::time::sleep(PARK_AFTER + Duration::from_millis(300)).await;
    tcp.write_all(b"GET /three HTTP/1.1\r\nHost: a\r\n\r\nGET /four HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut both = Vec::new();
    while both.len() < 2 {
        both.push(response(&mut tcp).await);
    }
    assert_eq!(both, ["GET /three HTTP/1.1", "GET /four HTTP/1.1"]);
}

#[tokio::test]
async fn a_parked_connection_still_ends_at_the_idle_timeout() {
    let idle = PARK_AFTER + Duration::from_secs(1);
    let addr = doorward(upstream().await, &format!("{}ms", idle.as_millis())).await;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    response(&mut tcp).await;
    let idle_from = tokio::time::Instant::now();
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(idle * 3, tcp.read(&mut rest))
        .await
        .expect("closed within the idle timeout")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without another byte");
    let waited = idle_from.elapsed();
    assert!(
        waited >= idle - Duration::from_millis(100),
        "closed after {waited:?}, before the idle timeout {idle:?}"
    );
}

#[tokio::test]
async fn the_rest_of_a_body_doorward_never_read_is_not_taken_for_a_request_after_a_park() {
    // A desync attempt: doorward answers the health check without reading
    // its body; the body's rest, sent after the connection could have
    // parked, holds a request. It must never be served as one (behind a
    // proxy that shares connections, it would answer someone else's).
    let addr = doorward(upstream().await, "60s").await;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!(
        "POST /_doorward/healthz HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        10 + smuggled.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp.write_all(b"0123456789").await.expect("write");
    tokio::time::sleep(PARK_AFTER + Duration::from_millis(300)).await;
    // The connection may already be closed: a failed write is fine.
    let _ = tcp.write_all(smuggled).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + PARK_AFTER * 3;
    let mut chunk = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 "), "the health check was answered: {seen}");
    assert!(
        !seen.contains("smuggled"),
        "the body's rest was served as a request: {seen}"
    );
}
