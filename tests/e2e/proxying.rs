//! Plain proxying: methods and bodies pass, hop-by-hop headers do not,
//! upgrades tunnel, and failures become generic 502/504 pages.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{echo_json, get, raw, send, Proxy, Upstream, WsEcho};

#[tokio::test]
async fn get_and_post_pass_through_with_forwarding_headers_and_request_id() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;

    let (status, headers, body) = get(proxy.addr, "/items?page=2", &[("accept", "application/json")]).await;
    assert_eq!(status, 200);
    let echo = echo_json(&body);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["target"], "/items?page=2");
    let seen = upstream.last();
    assert_eq!(seen.header("host"), Some("app.test"), "client Host kept by default");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    let id = headers
        .get("x-request-id")
        .expect("request id returned")
        .to_str()
        .expect("ascii");
    assert_eq!(seen.header("x-request-id"), Some(id), "the same id goes upstream");

    let payload = Bytes::from_static(b"{\"name\":\"doorward\"}");
    let (status, _, body) = send(
        proxy.addr,
        "POST",
        "/items",
        &[("content-type", "application/json"), ("x-request-id", "abc-123")],
        payload,
    )
    .await;
    assert_eq!(status, 200);
    let echo = echo_json(&body);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], "{\"name\":\"doorward\"}");
    assert_eq!(
        upstream.last().header("x-request-id"),
        Some("abc-123"),
        "a sane incoming id is kept"
    );
}

/// The per-core default serves every other test here; the work-stealing
/// runtime, kept as an option, must proxy the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_runtime_proxies_too() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&format!(
        "[server]\nruntime = \"shared\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ))
    .await;
    for i in 0..20 {
        let (status, _, body) = get(proxy.addr, &format!("/shared/{i}"), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(echo_json(&body)["target"], format!("/shared/{i}"));
    }
    assert_eq!(upstream.requests().len(), 20);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let request = "GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close, X-Private\r\nX-Private: 1\r\n\
                   Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
                   Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-End-To-End: yes\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    let seen = upstream.last();
    for gone in [
        "x-private",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
    ] {
        assert!(
            seen.header(gone).is_none(),
            "{gone} reached the upstream: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.header("x-end-to-end"), Some("yes"));

    let response = raw(
        proxy.addr,
        "GET /hop HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = response.head.to_ascii_lowercase();
    assert!(!head.contains("x-hop-secret"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    assert!(head.contains("x-end-to-end: kept"), "{head}");
}

#[tokio::test]
async fn websocket_upgrades_tunnel_both_ways() {
    let echo = WsEcho::start().await;
    let proxy = Proxy::start(&Proxy::route(&format!("http://{}", echo.addr), "public = [\"/\"]")).await;
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.addr))
        .await
        .expect("websocket handshake through doorward");
    assert_eq!(response.status(), 101);
    for text in ["hello", "second message", &"x".repeat(100_000)] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("send");
        let back = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo within 5s")
            .expect("a message")
            .expect("not an error");
        assert_eq!(back.into_text().expect("text").as_str(), text);
    }
    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn websocket_upgrade_to_a_protected_path_is_refused() {
    let echo = WsEcho::start().await;
    let proxy = Proxy::start(&Proxy::route(
        &format!("http://{}", echo.addr),
        "public = [\"/public/\"]",
    ))
    .await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.addr))
        .await
        .expect_err("no login, no tunnel");
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn unreachable_upstream_is_a_generic_502_in_html_or_json() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let proxy = Proxy::start(&Proxy::route(&format!("http://127.0.0.1:{port}"), "public = [\"/\"]")).await;

    let (status, headers, body) = get(proxy.addr, "/", &[("accept", "text/html")]).await;
    assert_eq!(status, 502);
    let page = String::from_utf8_lossy(&body);
    let id = headers["x-request-id"].to_str().expect("ascii");
    assert!(page.contains("<html") && page.contains(id), "{page}");
    assert!(
        !page.contains("127.0.0.1") && !page.to_lowercase().contains("refused"),
        "no internals: {page}"
    );

    let (status, _, body) = get(proxy.addr, "/", &[("accept", "application/json")]).await;
    assert_eq!(status, 502);
    let json = echo_json(&body);
    assert_eq!(json["status"], 502);
    assert!(json["request_id"].is_string());
    assert!(!String::from_utf8_lossy(&body).contains(&port.to_string()));

    let (_, _, metrics) = get(proxy.addr, "/_doorward/metrics", &[]).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(r#"doorward_upstream_errors_total{route="app",kind="connect"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_upstream_is_a_504() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]\ntimeout = \"300ms\"")).await;
    let started = std::time::Instant::now();
    let (status, _, _) = get(proxy.addr, "/slow/3000", &[("accept", "application/json")]).await;
    assert_eq!(status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // Within its timeout the same upstream is fine.
    let (status, _, _) = get(proxy.addr, "/slow/10", &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_body_limit_refuses_declared_and_streamed_oversize() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\nmax_request_body = \"1KiB\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    );
    let proxy = Proxy::start(&config).await;
    let (status, _, _) = send(proxy.addr, "POST", "/upload", &[], Bytes::from(vec![b'a'; 2048])).await;
    assert_eq!(status, 413);
    // Chunked, so the size is only known while streaming.
    let chunk = "a".repeat(800);
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    let status = raw(proxy.addr, &request).await.status;
    assert!(status == 413 || status == 400, "streamed oversize answered {status}");
    let (status, _, body) = send(proxy.addr, "POST", "/upload", &[], Bytes::from(vec![b'a'; 1000])).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"1000"[..]));
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints_answer() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let (status, _, body) = get(proxy.addr, "/_doorward/healthz", &[]).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok\n"[..]));
    let (status, _, _) = get(proxy.addr, "/_doorward/readyz", &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = get(proxy.addr, "/_doorward/nope", &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = send(proxy.addr, "POST", "/_doorward/healthz", &[], Bytes::new()).await;
    assert_eq!(status, 405);
    get(proxy.addr, "/a", &[]).await;
    let (_, headers, body) = get(proxy.addr, "/_doorward/metrics", &[]).await;
    assert!(headers["content-type"].to_str().expect("ascii").contains("openmetrics"));
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(r#"doorward_requests_total{route="app",status="2xx"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"doorward_request_duration_seconds_count{route="app"} 1"#),
        "{text}"
    );
    assert!(text.contains("doorward_requests_in_flight"), "{text}");
    assert!(upstream.requests().iter().all(|r| !r.target.starts_with("/_doorward")));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\nheader_read_timeout = \"300ms\"\nidle_timeout = \"300ms\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    );
    let proxy = Proxy::start(&config).await;

    // Slowloris: half a request head, then silence.
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await;
    assert!(closed.is_ok(), "connection still open after 3 s");

    // An idle keep-alive connection is closed too.
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut response)).await;
    assert!(read_all.is_ok(), "idle keep-alive connection still open after 3 s");
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));

    // A stalled upload gets 408 instead of holding the upstream.
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408") || text.is_empty(), "{text}");
}

#[tokio::test]
async fn connections_to_the_upstream_are_reused() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    for _ in 0..20 {
        let req = http::Request::get("/x")
            .header("host", "app.test")
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(req).await.expect("response");
        assert_eq!(response.status(), 200);
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body");
    }
    let connections: std::collections::HashSet<_> = upstream.requests().iter().map(|r| r.peer).collect();
    assert_eq!(
        connections.len(),
        1,
        "20 sequential requests used {} connections",
        connections.len()
    );
    assert_eq!(upstream.requests().len(), 20);
}

#[tokio::test]
async fn a_slow_steady_upload_is_not_cut_off_by_the_response_timeout() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]\ntimeout = \"1s\"")).await;
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 200\r\nConnection: close\r\n\r\n")
        .await
        .expect("head");
    // 2 s of upload in 100 ms steps: longer than the 1 s response timeout,
    // but never idle.
    for _ in 0..20 {
        tcp.write_all(&[b'u'; 10]).await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response))
        .await
        .expect("answered")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("200"), "{text}");
}
