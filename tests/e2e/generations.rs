//! An ended identity ends everything derived from it (issue 20): open
//! WebSocket tunnels and long responses close within a second of a logout,
//! a back-channel logout, a SCIM deactivation or a reload that refuses the
//! user (also on the other replica of a PostgreSQL pair), while another
//! user's tunnel stays open; and a directory change on one replica reaches
//! the bearer verdicts the other has cached.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::idp::Browser;
use crate::postgres::TestPostgres;
use crate::replicas::Pair;
use crate::scenario::{api_client_tokens, Options, Scenario};
use crate::scim::{scim_config, ScimClient, DOORWARD, USER};
use crate::support::{read_request_head, WsEcho};

/// The promise: closed within a second of the change.
const BOUND: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An upstream that answers every request with an event stream (no
/// Content-Length) that trickles an event every 100 ms until the reader
/// goes away.
struct Trickle {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Trickle {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind trickle");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    if read_request_head(&mut tcp, &mut buf).await.is_none() {
                        return;
                    }
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                transfer-encoding: chunked\r\n\r\n";
                    if tcp.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    // "data: tick\n\n" is 12 (0xc) bytes.
                    while tcp.write_all(b"c\r\ndata: tick\n\n\r\n").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Routes for a WebSocket echo under `/ws/` and, if given, an event
/// stream under `/stream/`, both protected.
fn long_lived_routes(echo: &WsEcho, trickle: Option<&Trickle>, ws_extra: &str) -> String {
    let mut text = format!(
        "[[route]]\nname = \"ws\"\nupstream = \"http://{}\"\npath_prefix = \"/ws/\"\n{ws_extra}\n",
        echo.addr
    );
    if let Some(trickle) = trickle {
        text.push_str(&format!(
            "[[route]]\nname = \"stream\"\nupstream = \"http://{}\"\npath_prefix = \"/stream/\"\n",
            trickle.addr
        ));
    }
    text
}

fn session_cookie(browser: &Browser) -> String {
    format!("doorward={}", browser.cookie("doorward").expect("session cookie").value)
}

/// Opens a WebSocket through doorward at `base` (http://...) with the
/// browser's session cookie, and checks it echoes.
pub(crate) async fn open_ws(base: &str, browser: &Browser) -> Ws {
    let url = format!("{}/ws/socket", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("ws request");
    request
        .headers_mut()
        .insert("cookie", session_cookie(browser).parse().expect("cookie value"));
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket through doorward");
    assert_eq!(response.status(), 101);
    assert!(echoes(&mut ws).await, "a fresh tunnel echoes");
    ws
}

/// Whether the tunnel still carries a message both ways.
pub(crate) async fn echoes(ws: &mut Ws) -> bool {
    if ws.send(Message::text("ping")).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(3), ws.next()).await,
        Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "ping"
    )
}

/// Waits for the tunnel to close; returns how long that took from `since`.
pub(crate) async fn closed_after(ws: &mut Ws, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => panic!("the tunnel is still open 5 s after the change"),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return since.elapsed(),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Opens the event stream with the browser's cookie and reads its head and
/// first event.
async fn open_stream(base: &str, browser: &Browser) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /stream/events HTTP/1.1\r\nhost: {addr}\r\ncookie: {}\r\naccept: text/event-stream\r\n\r\n",
        session_cookie(browser)
    );
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: tick") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("the stream starts")
            .expect("read");
        assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    tcp
}

/// Waits for the stream's connection to end (not with a clean last
/// chunk); returns how long that took from `since`.
async fn stream_ended_after(tcp: &mut TcpStream, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(5);
    let mut buf = [0u8; 1024];
    let mut tail = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline.into(), tcp.read(&mut buf)).await {
            Err(_) => panic!("the stream is still open 5 s after the change"),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => tail.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        !String::from_utf8_lossy(&tail).contains("\r\n0\r\n\r\n"),
        "an ended admission is an error, not a complete response"
    );
    since.elapsed()
}

/// Signs `browser` out at doorward (the confirmation form); returns once
/// doorward has ended the session.
async fn log_out(base: &str, browser: &mut Browser) {
    let confirm = browser.get(&format!("{base}/_doorward/logout")).await;
    let form = crate::idp::Form::parse(&confirm.body).expect("form");
    let action = confirm.url.join(&form.action).expect("action");
    let out = browser.request("POST", &action, Some(&form.inputs)).await;
    assert_eq!(out.status, 303);
}

#[tokio::test]
async fn a_logout_ends_the_users_tunnel_and_event_stream_within_a_second_and_no_one_elses() {
    let echo = WsEcho::start().await;
    let trickle = Trickle::start().await;
    let s = Scenario::start(Options {
        extra: long_lived_routes(&echo, Some(&trickle), ""),
        ..Options::default()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;
    let bob = s.logged_in("bob", "/").await;
    let mut alice_ws = open_ws(&s.base, &alice).await;
    let mut alice_stream = open_stream(&s.base, &alice).await;
    let mut bob_ws = open_ws(&s.base, &bob).await;

    log_out(&s.base, &mut alice).await;
    let changed = Instant::now();
    let ws_delay = closed_after(&mut alice_ws, changed).await;
    let stream_delay = stream_ended_after(&mut alice_stream, changed).await;
    eprintln!("logout: tunnel closed after {ws_delay:?}, stream ended after {stream_delay:?}");
    assert!(ws_delay < BOUND, "tunnel closed {ws_delay:?} after logout");
    assert!(stream_delay < BOUND, "stream ended {stream_delay:?} after logout");
    assert!(echoes(&mut bob_ws).await, "bob's tunnel stays open");
}

#[tokio::test]
async fn a_reload_that_refuses_the_user_ends_their_tunnel_and_no_one_elses() {
    let echo = WsEcho::start().await;
    let s = Scenario::start(Options {
        extra: long_lived_routes(&echo, None, "require_groups = [\"staff\", \"Marketing Team\"]"),
        ..Options::default()
    })
    .await;
    let alice = s.logged_in("alice", "/").await;
    let bob = s.logged_in("bob", "/").await;
    let mut alice_ws = open_ws(&s.base, &alice).await;
    let mut bob_ws = open_ws(&s.base, &bob).await;

    let file = crate::support::write_config(&s.config);
    let config = doorward::config::parse_str(&s.config, "test.toml").expect("config");
    let reloader = doorward::reload::Reloader::new(file.path().to_path_buf(), config, s._proxy.gateway.clone());
    // Only bob's group may use the WebSocket route now.
    let tightened = s.config.replace(
        "require_groups = [\"staff\", \"Marketing Team\"]",
        "require_groups = [\"Marketing Team\"]",
    );
    assert_ne!(tightened, s.config);
    std::fs::write(file.path(), &tightened).expect("rewrite config");
    assert_eq!(reloader.reload("test").await, doorward::reload::Outcome::Reloaded);
    let changed = Instant::now();
    let delay = closed_after(&mut alice_ws, changed).await;
    eprintln!("reload: tunnel closed after {delay:?}");
    assert!(delay < BOUND, "tunnel closed {delay:?} after the reload");
    assert!(echoes(&mut bob_ws).await, "bob's tunnel stays open");
}

#[tokio::test]
async fn on_the_other_replica_a_scim_deactivation_and_a_back_channel_logout_end_tunnels() {
    let pg = TestPostgres::shared();
    let echo = WsEcho::start().await;
    let pair = Pair::start(
        pg,
        Options {
            extra: format!("{}{}", long_lived_routes(&echo, None, ""), scim_config("merged")),
            ..Options::default()
        },
    )
    .await;
    let scim = ScimClient::of(&pair.s.base);
    let bob_id = scim.create_user("bob@example.com", json!({})).await;
    let mut alice = pair.s.logged_in("alice", "/").await;
    let bob = pair.s.logged_in("bob", "/").await;
    let on_b = format!("http://{}", pair.b.addr);
    let mut alice_ws = open_ws(&on_b, &alice).await;
    let mut bob_ws = open_ws(&on_b, &bob).await;

    // bob is deactivated through replica A; his tunnel is on B.
    let off = scim
        .patch(
            &format!("/Users/{bob_id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let changed = Instant::now();
    let delay = closed_after(&mut bob_ws, changed).await;
    eprintln!("SCIM deactivation on A: tunnel on B closed after {delay:?}");
    assert!(
        delay < BOUND,
        "tunnel on B closed {delay:?} after the deactivation on A"
    );
    assert!(echoes(&mut alice_ws).await, "alice's tunnel stays open");

    // alice signs out at the IdP; its back-channel logout reaches A.
    let page = alice.navigate(&format!("{}/session/end", pair.s.idp.issuer)).await;
    let done = alice.submit(&page, "alice", &[("logout", "yes")]).await;
    assert!(done.status < 500, "{}", done.body);
    let changed = Instant::now();
    let delay = closed_after(&mut alice_ws, changed).await;
    eprintln!("back-channel logout at A: tunnel on B closed after {delay:?}");
    assert!(
        delay < BOUND,
        "tunnel on B closed {delay:?} after the back-channel logout"
    );
}

#[tokio::test]
async fn a_role_removal_or_deactivation_on_one_replica_reaches_the_other_replicas_cached_bearer_verdict() {
    let pg = TestPostgres::shared();
    let pair = Pair::start(
        pg,
        Options {
            route: "bearer = true\nrequire_roles = [\"app-admin\"]".into(),
            extra: scim_config("merged"),
            ..Options::default()
        },
    )
    .await;
    let scim = ScimClient::of(&pair.s.base);
    let with_role = |active: bool, roles: &[&str]| {
        json!({
            "schemas": [USER, DOORWARD], "userName": "bob@example.com", "active": active,
            DOORWARD: {"roles": roles},
        })
    };
    let created = scim.post("/Users", with_role(true, &["app-admin"])).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    let tokens = api_client_tokens(&pair.s.idp, "bob").await;
    let token = tokens["access_token"].as_str().expect("access_token").to_string();
    let on_b = format!("http://{}", pair.b.addr);
    for _ in 0..2 {
        let page = crate::gate::with_bearer(&on_b, "/api", &token).await;
        assert_eq!(page.status, 200, "admitted on B, and cached: {}", page.body);
    }

    // The role is removed through A: B's next answer to the same token.
    let put = scim.put(&format!("/Users/{id}"), with_role(true, &[])).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        crate::gate::with_bearer(&on_b, "/api", &token).await.status,
        403,
        "B dropped its verdict"
    );

    // Given back, then the user is deactivated through A.
    let put = scim.put(&format!("/Users/{id}"), with_role(true, &["app-admin"])).await;
    assert_eq!(put.status, 200, "{}", put.body);
    // (Regaining a role is not what the promise is about: B may take a
    // moment for the notice.)
    let regained = Instant::now();
    while crate::gate::with_bearer(&on_b, "/api", &token).await.status != 200 {
        assert!(regained.elapsed() < BOUND, "B never saw the role come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let off = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(
        crate::gate::with_bearer(&on_b, "/api", &token).await.status,
        403,
        "B refuses the deactivated user's cached token"
    );
}

#[tokio::test]
async fn an_operators_revocation_ends_the_users_tunnels_on_both_replicas_and_no_one_elses() {
    let pg = TestPostgres::shared();
    let echo = WsEcho::start().await;
    let pair = Pair::start(
        pg,
        Options {
            extra: long_lived_routes(&echo, None, ""),
            ..Options::default()
        },
    )
    .await;
    let alice = pair.s.logged_in("alice", "/").await;
    let bob = pair.s.logged_in("bob", "/").await;
    let on_b = format!("http://{}", pair.b.addr);
    let mut alice_on_a = open_ws(&pair.s.base, &alice).await;
    let mut alice_on_b = open_ws(&on_b, &alice).await;
    let mut bob_on_b = open_ws(&on_b, &bob).await;

    // The operator's CLI is another process: only the store's notices can
    // reach the running replicas.
    let (ok, out, err) = crate::operators::cli(&pair.s.config, &["revoke", "--user", "alice@example.com"]).await;
    assert!(ok && out.contains("revoked 1 session"), "{out}{err}");
    let changed = Instant::now();
    let (on_a, on_b) = tokio::join!(
        closed_after(&mut alice_on_a, changed),
        closed_after(&mut alice_on_b, changed)
    );
    eprintln!("doorward sessions revoke: tunnels closed after {on_a:?} (A) and {on_b:?} (B)");
    assert!(
        on_a < BOUND && on_b < BOUND,
        "closed after {on_a:?} on A, {on_b:?} on B"
    );
    assert!(echoes(&mut bob_on_b).await, "bob's tunnel stays open");
}
