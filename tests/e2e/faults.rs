//! Faults survived: an upstream that resets mid-response, SIGTERM while many
//! requests are in flight, an IdP answering garbage during a login. (The
//! IdP going away while sessions go on is in oidc.rs.)

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::child::ChildDoorward;
use crate::support::{get, raw, read_request_head, write_config, Proxy, Upstream};

/// Bytes `/reset` sends of the 1 MB it announces before resetting.
const SENT_BEFORE_RESET: usize = 64 * 1024;

/// An upstream written on raw sockets: `/reset` announces 1 MB, sends 64 KiB
/// of `r` and resets the connection (RST, not FIN); anything else gets
/// `own:<path>` on a keep-alive connection.
struct ResettingUpstream {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ResettingUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve_resetting(tcp));
            }
        });
        Self { addr, task }
    }
}

impl Drop for ResettingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_resetting(mut tcp: TcpStream) {
    let mut buf = Vec::new();
    loop {
        // One request head (GETs only, no bodies) per turn.
        let Some(head) = read_request_head(&mut tcp, &mut buf).await else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        if path == "/reset" {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                .await;
            let _ = tcp.write_all(&vec![b'r'; SENT_BEFORE_RESET]).await;
            let _ = tcp.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = tcp.set_zero_linger();
            return;
        }
        let body = format!("own:{path}");
        let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn an_upstream_reset_mid_response_truncates_that_response_only() {
    let upstream = ResettingUpstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&format!("http://{}", upstream.addr), "public = [\"/\"]")).await;

    // Warm the pool, so the reset hits a pooled connection's neighbours.
    for i in 0..3 {
        let (status, _, body) = get(proxy.addr, &format!("/warm{i}"), &[]).await;
        assert_eq!((status.as_u16(), &body[..]), (200, format!("own:/warm{i}").as_bytes()));
    }
    let addr = proxy.addr;
    let others: Vec<_> = (0..8)
        .map(|i| tokio::spawn(async move { get(addr, &format!("/other{i}"), &[]).await }))
        .collect();
    let reset = tokio::time::timeout(
        Duration::from_secs(10),
        raw(
            proxy.addr,
            "GET /reset HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("the client is not left hanging");
    // The head went out before the reset: the client sees a 200 whose body
    // stops short (the connection is closed, not padded or reused), made
    // only of the bytes the upstream sent for this request.
    assert_eq!(reset.status, 200, "{}", reset.head);
    assert!(
        reset.body.len() <= SENT_BEFORE_RESET,
        "{} body bytes, more than the {SENT_BEFORE_RESET} the upstream sent",
        reset.body.len()
    );
    assert!(
        reset.body.bytes().all(|b| b == b'r'),
        "nothing but this response's bytes: {:?}",
        &reset.body[..reset.body.len().min(200)]
    );
    for (i, other) in others.into_iter().enumerate() {
        let (status, _, body) = other.await.expect("join");
        assert_eq!(
            (status.as_u16(), String::from_utf8_lossy(&body).into_owned()),
            (200, format!("own:/other{i}")),
            "a concurrent request got its own answer"
        );
    }
    // The reset connection is not reused: later requests are answered.
    for i in 0..3 {
        let (status, _, body) = get(proxy.addr, &format!("/after{i}"), &[]).await;
        assert_eq!((status.as_u16(), &body[..]), (200, format!("own:/after{i}").as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_lets_every_in_flight_request_finish() {
    let upstream = Upstream::start().await;
    // A log level that hides the "listening" line: ChildDoorward must
    // find the port without it.
    let config = write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"10s\"\n[log]\nlevel = \"warn\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ));
    let doorward = ChildDoorward::serve(config.path());
    let addr = doorward.addr;
    // 40 requests in flight, finishing over the next 0.5-2.5 s.
    let in_flight: Vec<_> = (0..40u64)
        .map(|i| tokio::spawn(async move { get(addr, &format!("/slow/{}", 500 + i * 50), &[]).await }))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while upstream.requests().len() < 40 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.requests().len(), 40, "all 40 requests reached the upstream");
    let killed = Command::new("kill")
        .args(["-TERM", &doorward.pid().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    for request in in_flight {
        let (status, _, body) = request.await.expect("join");
        assert_eq!(
            (status.as_u16(), &body[..]),
            (200, &b"slow done"[..]),
            "an in-flight request was cut by the drain"
        );
    }
    // No new connections once draining.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after SIGTERM");
}

/// An IdP whose discovery and keys are fine but whose token endpoint
/// answers an HTML error page, as a proxy in front of a broken IdP does.
async fn garbage_token_idp() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind idp");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let issuer = base.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let issuer = issuer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let Ok(n) = tcp.read(&mut buf).await else { return };
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (kind, body) = if path.starts_with("/.well-known/openid-configuration") {
                    (
                        "application/json",
                        serde_json::json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/auth"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        })
                        .to_string(),
                    )
                } else if path.starts_with("/jwks") {
                    ("application/json", r#"{"keys":[]}"#.to_string())
                } else {
                    ("text/html", "<html><body>502 Bad Gateway</body></html>".to_string())
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, task)
}

#[tokio::test]
async fn an_idp_answering_garbage_at_the_token_endpoint_gives_a_clear_page_and_a_log_line() {
    let log = crate::support::LogCapture::start("doorward=info");
    let (issuer, idp) = garbage_token_idp().await;
    let upstream = Upstream::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind doorward");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let config = format!(
        "[server]\npublic_url = \"{base}\"\n[session]\nkeys = [\"{}\"]\n[[provider]]\nname = \"broken\"\nkind = \"oidc\"\n\
         issuer = \"{issuer}\"\nclient_id = \"doorward\"\nclient_secret = \"a-client-secret-0123456789\"\n{}",
        crate::scenario::SESSION_KEY,
        Proxy::route(&upstream.url(), "")
    );
    let store = tempfile::tempdir().expect("store dir");
    let config = format!(
        "{config}\n[store]\nurl = \"sqlite://{}/doorward.db\"\n",
        store.path().display()
    );
    let _proxy = Proxy::start_on(&config, listener).await;

    // Follow doorward's redirects up to the IdP's authorization endpoint.
    let mut browser = crate::idp::Browser::default();
    let mut page = browser.get(&format!("{base}/private")).await;
    let mut authorize = None;
    for _ in 0..5 {
        let Some(next) = page.location() else { break };
        if next.as_str().starts_with(&format!("{issuer}/auth")) {
            authorize = Some(next);
            break;
        }
        page = browser.request("GET", &next, None).await;
    }
    let authorize = authorize.unwrap_or_else(|| panic!("never sent to the IdP: {} {}", page.status, page.body));
    let param = |name: &str| {
        authorize
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {authorize}"))
    };
    let callback = format!(
        "{}?code=a-code&state={}",
        param("redirect_uri"),
        form_urlencoded::byte_serialize(param("state").as_bytes()).collect::<String>()
    );
    let page = browser.get(&callback).await;

    // What the user sees today: the sign-in failed (401), with a reference
    // to quote and nothing from the IdP's page.
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("Sign-in failed"), "{}", page.body);
    assert!(!page.body.contains("Bad Gateway"), "no IdP internals on the page");
    let text = log.text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("token endpoint") && l.contains("text/html")),
        "no log line saying what the token endpoint answered:\n{text}"
    );
    // doorward itself is fine: the next visitor is sent to sign in again.
    let again = crate::idp::Browser::default().get(&format!("{base}/private")).await;
    assert_eq!(again.status, 302, "{}", again.body);
    idp.abort();
}
