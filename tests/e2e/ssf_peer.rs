//! The shared-signals test transmitter (tests/peers/ssf, an SSF 1.0
//! transmitter in Python) started on port 0, and its control API: emit an
//! event (honest or an attack), rotate keys, read what it saw. Killed on
//! drop, and gone by itself if the test process dies (it exits when its
//! stdin closes).
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, ChildStdin, Command, Stdio};

use bytes::Bytes;
use serde_json::{json, Value};
use url::Url;

use crate::idp::{raw_request, Page};

/// The token the transmitter wants for stream management and polling
/// (doorward's `transmitter_token`).
pub const MGMT_TOKEN: &str = "ssf-management-token-0123456789abcdef";
/// The credential the transmitter presents on push (doorward's `push_token`).
pub const PUSH_TOKEN: &str = "ssf-push-token-0123456789abcdef-0123456789";
/// The `aud` of every SET, and doorward's `audience`.
pub const AUDIENCE: &str = "urn:doorward:signals-test";

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// A CAEP event type URI by its short name.
pub fn caep(name: &str) -> String {
    format!("{CAEP}{name}")
}

/// A RISC event type URI by its short name.
pub fn risc(name: &str) -> String {
    format!("{RISC}{name}")
}

/// A running transmitter.
pub struct Transmitter {
    /// `http://127.0.0.1:PORT`, also its issuer.
    pub issuer: String,
    child: Child,
    _stdin: ChildStdin,
}

impl Transmitter {
    pub fn start() -> Self {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
        assert!(
            std::path::Path::new(python).exists(),
            "the test peers' venv is missing: run scripts/test.sh"
        );
        let mut child = Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/ssf/transmitter.py"))
            .args(["--token", MGMT_TOKEN, "--audience", AUDIENCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SSF transmitter");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the transmitter's line");
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("SSF peer said {line:?}"));
        Self {
            issuer: info["issuer"].as_str().expect("issuer").to_string(),
            child,
            _stdin: stdin,
        }
    }

    /// One control call; the answer as JSON (asserting a 2xx).
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = Url::parse(&format!("{}{path}", self.issuer)).expect("url");
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let page: Page = raw_request(method, &url, &[("content-type", "application/json")], bytes).await;
        assert!(page.status < 300, "{method} {path}: {} {}", page.status, page.body);
        if page.body.is_empty() {
            Value::Null
        } else {
            page.json()
        }
    }

    /// Registers a push stream to `endpoint_url` by hand (as an operator
    /// would, doorward not managing it); its id.
    pub async fn push_stream(&self, endpoint_url: &str) -> String {
        let stream = self
            .control(
                "POST",
                "/_test/streams",
                Some(json!({
                    "delivery": {
                        "method": "urn:ietf:rfc:8935",
                        "endpoint_url": endpoint_url,
                        "authorization_header": format!("Bearer {PUSH_TOKEN}"),
                    },
                    "events_requested": [],
                })),
            )
            .await;
        stream["stream_id"].as_str().expect("stream_id").to_string()
    }

    /// Emits a SET (`/_test/emit` with these members and overrides): the
    /// answer `{jti, token, status, body}`.
    pub async fn emit(&self, request: Value) -> Value {
        self.control("POST", "/_test/emit", Some(request)).await
    }

    /// Emits `event` about `sub_id` and asserts doorward accepted it (202).
    pub async fn accepted(&self, event: &str, payload: Value, sub_id: Value) -> Value {
        let answer = self
            .emit(json!({"event": event, "payload": payload, "sub_id": sub_id}))
            .await;
        assert_eq!(answer["status"], 202, "{event} about {sub_id} was not taken: {answer}");
        answer
    }

    pub async fn rotate(&self) -> Value {
        self.control("POST", "/_test/rotate", Some(json!({}))).await
    }

    pub async fn state(&self) -> Value {
        self.control("GET", "/_test/state", None).await
    }
}

impl Drop for Transmitter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `email` subject.
pub fn email(address: &str) -> Value {
    json!({"format": "email", "email": address})
}

/// An `iss_sub` subject.
pub fn iss_sub(iss: &str, sub: &str) -> Value {
    json!({"format": "iss_sub", "iss": iss, "sub": sub})
}
