//! The client half of bench/scim.sh: provisions users by sequential SCIM
//! POSTs on one keep-alive connection (as an IdP's first sync does), then
//! looks users up with `filter=userName eq "..."` (as every later sync
//! does), and prints the timings as `key=value` lines.
//!
//! ```sh
//! cargo run --release --example bench_scim -- http://127.0.0.1:4180/_doorward/scim/v2 TOKEN 10000 2000
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Sender = SendRequest<Full<Bytes>>;

async fn connect(base: &url::Url) -> Sender {
    let addr = (
        base.host_str().unwrap_or("127.0.0.1"),
        base.port_or_known_default().unwrap_or(80),
    );
    let tcp = TcpStream::connect(addr).await.expect("connect to doorward");
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// One request; returns the status and body, and how long it took.
async fn call(
    sender: &mut Sender,
    method: &str,
    target: &str,
    host: &str,
    token: &str,
    body: Option<String>,
) -> (u16, Bytes, Duration) {
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .header("host", host)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/scim+json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let started = Instant::now();
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, bytes, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_scim BASE_URL TOKEN [USERS] [LOOKUPS]";
    let base = url::Url::parse(args.get(1).expect(usage)).expect("base URL");
    let token = args.get(2).expect(usage).clone();
    let users: usize = args.get(3).map_or(10_000, |n| n.parse().expect("USERS"));
    let lookups: usize = args.get(4).map_or(2_000, |n| n.parse().expect("LOOKUPS"));
    let host = format!(
        "{}:{}",
        base.host_str().unwrap_or("127.0.0.1"),
        base.port_or_known_default().unwrap_or(80)
    );
    let path = base.path().trim_end_matches('/').to_string();
    let mut sender = connect(&base).await;

    let mut posts = Vec::with_capacity(users);
    let started = Instant::now();
    for i in 0..users {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i}@bench.test"), "externalId": format!("ext-{i}"),
            "name": {"givenName": "Bench", "familyName": format!("User {i}")},
            "emails": [{"primary": true, "value": format!("user{i}@bench.test"), "type": "work"}],
            "displayName": format!("Bench User {i}"), "active": true, "password": "never-stored",
        });
        let (status, bytes, took) = call(
            &mut sender,
            "POST",
            &format!("{path}/Users"),
            &host,
            &token,
            Some(body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "POST user {i}: {}", String::from_utf8_lossy(&bytes));
        posts.push(took);
    }
    let provisioning = started.elapsed();
    posts.sort();

    // A fixed pseudo-random order of existing users (xorshift), so every
    // lookup is a hit somewhere in the table.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut gets = Vec::with_capacity(lookups);
    for _ in 0..lookups {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let i = usize::try_from(state % users.max(1) as u64).unwrap_or(0);
        let filter: String =
            form_urlencoded::byte_serialize(format!("userName eq \"user{i}@bench.test\"").as_bytes()).collect();
        let target = format!("{path}/Users?filter={filter}");
        let (status, bytes, took) = call(&mut sender, "GET", &target, &host, &token, None).await;
        assert_eq!(status, 200);
        let found: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(found["totalResults"], 1, "user{i}");
        gets.push(took);
    }
    gets.sort();

    println!("users={users}");
    println!("provision_seconds={:.2}", provisioning.as_secs_f64());
    println!("post_p50_ms={}", ms(percentile(&posts, 0.50)));
    println!("post_p99_ms={}", ms(percentile(&posts, 0.99)));
    println!("lookups={lookups}");
    println!("filter_p50_ms={}", ms(percentile(&gets, 0.50)));
    println!("filter_p99_ms={}", ms(percentile(&gets, 0.99)));
    println!("filter_max_ms={}", ms(gets.last().copied().unwrap_or_default()));
}
