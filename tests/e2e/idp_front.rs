//! A fault injector in front of the real OpenID provider: a loopback relay
//! that the provider announces as its issuer (`OIDC_ISSUER`), passing every
//! request through to it unchanged, except the endpoints a test breaks. It
//! is not a stand-in for the IdP: logins, tokens and keys all come from the
//! real one, and only the fault is made here.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the front does to requests for one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Accepts the request and never answers (the connection stays open
    /// until the client gives up).
    Stall,
    /// Answers this instead of the provider.
    Answer {
        status: u16,
        content_type: &'static str,
        body: String,
    },
}

#[derive(Default)]
struct Shared {
    faults: HashMap<String, Fault>,
    /// How many requests came for each path (caught or relayed).
    seen: HashMap<String, usize>,
}

pub struct IdpFront {
    /// The address to announce as the issuer.
    pub base: String,
    target: watch::Sender<Option<SocketAddr>>,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl IdpFront {
    /// Listens on a port of its own; connections wait until
    /// [`IdpFront::relay_to`] names the provider.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind idp front");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (target, watching) = watch::channel(None);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut open = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                open.spawn(serve(client, watching.clone(), Arc::clone(&state)));
            }
        });
        Self {
            base,
            target,
            shared,
            task,
        }
    }

    /// The provider's own address (`Idp::listen`, `http://127.0.0.1:PORT`).
    pub fn relay_to(&self, listen: &str) {
        let addr = listen.trim_start_matches("http://").parse().expect("provider address");
        self.target.send_replace(Some(addr));
    }

    /// Requests for exactly `path` (no query) get `fault` from now on.
    pub fn set(&self, path: &str, fault: Fault) {
        self.shared
            .lock()
            .expect("front")
            .faults
            .insert(path.to_string(), fault);
    }

    /// Every request goes to the provider again.
    pub fn clear(&self) {
        self.shared.lock().expect("front").faults.clear();
    }

    /// How many requests for `path` came so far (caught or relayed).
    pub fn seen(&self, path: &str) -> usize {
        self.shared.lock().expect("front").seen.get(path).copied().unwrap_or(0)
    }

    /// Waits (at most `limit`) until `n` requests for `path` have come.
    pub async fn await_seen(&self, path: &str, n: usize, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.seen(path) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} requests for {path} came in {limit:?}",
                self.seen(path)
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for IdpFront {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // relayed or stalled connection with it.
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, mut target: watch::Receiver<Option<SocketAddr>>, shared: Arc<Mutex<Shared>>) {
    // One request head decides the connection's fate (doorward and the
    // test browser open a connection per request).
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let fault = {
        let mut shared = shared.lock().expect("front");
        *shared.seen.entry(path.clone()).or_default() += 1;
        shared.faults.get(&path).cloned()
    };
    match fault {
        Some(Fault::Stall) => {
            // Read and drop whatever comes, answer nothing.
            let mut sink = [0u8; 4096];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Some(Fault::Answer {
            status,
            content_type,
            body,
        }) => {
            let response = format!(
                "HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
        }
        None => {
            let Ok(addr) = target.wait_for(Option::is_some).await.map(|a| a.expect("some")) else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(addr).await else {
                return;
            };
            if server.write_all(&head).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
    }
}
