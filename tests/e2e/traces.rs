//! Traces end to end: the real `doorward serve` binary exporting OTLP/HTTP
//! (protobuf) to a receiver this test runs, while a real login happens at
//! the real OP and a real upstream answers. Spans arrive with the caller's
//! trace (from a trusted peer only), the right parents and the HTTP
//! attributes; the upstream is given doorward's `traceparent`; no secret
//! of the run is in any attribute; with traces off nothing is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::net::TcpListener;

use crate::child::ChildDoorward;
use crate::faults_store::Relay;
use crate::idp::{Browser, Idp};
use crate::scenario::SESSION_KEY;
use crate::support::{write_config, Upstream};

/// The caller's trace and span, as a trusted front proxy would send them.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Each span received, with its resource's attributes (`service.name`).
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Span)>>>;

/// An OTLP/HTTP traces receiver on 127.0.0.1, port 0: takes
/// `POST /v1/traces`, keeps every span, answers an empty success.
struct Receiver {
    addr: SocketAddr,
    spans: Received,
    posts: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let spans: Received = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(0));
        let (kept, counted) = (Arc::clone(&spans), Arc::clone(&posts));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (kept, counted) = (Arc::clone(&kept), Arc::clone(&counted));
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (kept, counted) = (Arc::clone(&kept), Arc::clone(&counted));
                        async move {
                            assert_eq!(req.method(), "POST");
                            assert_eq!(req.uri().path(), "/v1/traces");
                            let content_type = req.headers().get("content-type").cloned();
                            assert_eq!(
                                content_type.as_ref().map(|v| v.as_bytes()),
                                Some(&b"application/x-protobuf"[..])
                            );
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            let export = ExportTraceServiceRequest::decode(body).expect("an OTLP traces export");
                            *counted.lock().expect("lock") += 1;
                            for resource in export.resource_spans {
                                let service = resource.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
                                for scope in resource.scope_spans {
                                    for span in scope.spans {
                                        kept.lock().expect("lock").push((service.clone(), span));
                                    }
                                }
                            }
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            spans,
            posts,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The first span `matches` picks, once it has arrived (a deadline,
    /// not a sleep: the batch is sent every 100 ms here).
    async fn span(&self, what: &str, matches: impl Fn(&Span) -> bool) -> Span {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(span) = self.spans().into_iter().find(|s| matches(s)) {
                return span;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} span among {:#?}",
                names(&self.spans())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// String forms of a span's (or resource's) attributes.
fn attributes(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    attributes(&span.attributes)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn names(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{} {:?}", s.name, attributes(&s.attributes)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(base: &str, issuer: &str, upstream: &str, dir: &std::path::Path, traces: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{base}"
[log]
format = "json"
level = "warn"
[store]
url = "sqlite://{dir}/doorward.db"
[session]
keys = ["{SESSION_KEY}"]
[[provider]]
name = "test-idp"
kind = "oidc"
issuer = "{issuer}"
client_id = "doorward"
client_secret = "{secret}"
scopes = ["openid", "email", "profile", "groups"]
[[route]]
name = "open"
path_prefix = "/open"
upstream = "{upstream}"
public = ["/open/"]
[[route]]
name = "gone"
path_prefix = "/gone"
# Nothing listens on port 1: every call fails to connect.
upstream = "http://127.0.0.1:1"
public = ["/gone/"]
[[route]]
name = "app"
upstream = "{upstream}"
{traces}
"#,
        dir = dir.display(),
        secret = crate::idp::CLIENT_SECRET,
    )
}

/// The batch exporter's delay: short so the test's deadlines are short.
fn serve(config: &std::path::Path) -> ChildDoorward {
    serve_batching_every(config, "100")
}

fn serve_batching_every(config: &std::path::Path, ms: &str) -> ChildDoorward {
    ChildDoorward::serve_with(config, |command| {
        command.env("OTEL_BSP_SCHEDULE_DELAY", ms);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_a_trusted_callers_trace_reach_the_upstream_and_carry_no_secret() {
    let receiver = Receiver::start().await;
    // Off, pointed at a receiver of its own: it must get nothing.
    let off_receiver = Receiver::start().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let off_dir = tempfile::tempdir().expect("dir");

    // The OP needs doorward's callback URL before doorward runs: a relay
    // names one address for it.
    let relay = Relay::start().await;
    let base = relay.base.clone();
    let clients = json!([Idp::doorward_client(
        &base,
        &format!("{base}/_doorward/backchannel-logout")
    )]);
    let idp = Idp::start(&clients, &Idp::accounts(), &[]);

    let traces = format!(
        "[traces]\nenabled = true\nendpoint = \"{}\"\nservice_name = \"doorward-e2e\"\n\
         trust_traceparent_from = [\"127.0.0.0/8\"]\nsample_ratio = 0.0\n",
        receiver.endpoint()
    );
    let file = write_config(&config(&base, &idp.issuer, &upstream.url(), dir.path(), &traces));
    let doorward = serve(file.path());
    relay.point_at(doorward.addr);

    // First, traces off (pointed at a receiver of its own): the same
    // request, with a trusted traceparent, which then passes as any header.
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let off = format!(
        "[traces]\nenabled = false\nendpoint = \"{}\"\ntrust_traceparent_from = [\"127.0.0.0/8\"]\n",
        off_receiver.endpoint()
    );
    let off_file = write_config(&config(&base, &idp.issuer, &upstream.url(), off_dir.path(), &off));
    let doorward_off = serve(off_file.path());
    let (status, _, _) = crate::support::get(doorward_off.addr, "/open/off", &[("traceparent", &traceparent)]).await;
    assert_eq!(status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("traceparent"),
        Some(traceparent.as_str()),
        "off: passed as any header"
    );
    drop(doorward_off);

    // A trusted, sampled caller: every request of the login carries its
    // trace. (sample_ratio = 0: only the parent's decision keeps these.)
    let mut alice = Browser {
        headers: vec![("traceparent".into(), traceparent.clone())],
        ..Browser::default()
    };
    let page = alice.login(&format!("{base}/home?x=1"), "alice", &idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = alice
        .cookies
        .iter()
        .find(|c| c.name.starts_with("doorward"))
        .map(|c| c.value.clone())
        .expect("a session cookie");
    let home = alice.get(&format!("{base}/home/again")).await;
    assert_eq!(home.status, 200, "{}", home.body);

    // The logged-in request: a server span in the caller's trace, its
    // parent the caller's span, with the HTTP attributes.
    let root = receiver
        .span("request for /home/again", |s| {
            s.name == "GET" && attr(s, "url.path").as_deref() == Some("/home/again")
        })
        .await;
    assert_eq!(hex(&root.trace_id), CALLER_TRACE);
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN);
    assert_eq!(root.kind, 2, "a server span");
    assert_eq!(attr(&root, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr(&root, "http.route").as_deref(), Some("app"));
    assert_eq!(attr(&root, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attr(&root, "client.address").as_deref(), Some("127.0.0.1"));
    assert!(attr(&root, "doorward.request_id").is_some_and(|id| !id.is_empty()));

    // Its children: the caller recognised, the upstream exchange.
    let child_of = |parent: &Span, name: &'static str| {
        let parent_id = parent.span_id.clone();
        move |s: &Span| s.name == name && s.parent_span_id == parent_id
    };
    receiver
        .span("doorward.recognise", child_of(&root, "doorward.recognise"))
        .await;
    let exchange = receiver
        .span("doorward.upstream", child_of(&root, "doorward.upstream"))
        .await;
    assert_eq!(exchange.kind, 3, "a client span");
    assert_eq!(attr(&exchange, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(
        exchange.status.as_ref().map_or(0, |s| s.code),
        0,
        "unset: it answered 200"
    );

    // An upstream that cannot be reached: the client span is an error
    // (status code 2) that says why, as the metrics do. (In the caller's
    // sampled trace: this doorward samples nothing of its own.)
    let (status, _, _) = crate::support::get(doorward.addr, "/gone/page", &[("traceparent", &traceparent)]).await;
    assert_eq!(status, 502);
    let failed = receiver
        .span("the failed upstream call", |s| {
            s.name == "doorward.upstream" && attr(s, "http.route").as_deref() == Some("gone")
        })
        .await;
    assert_eq!(failed.status.as_ref().map(|s| s.code), Some(2), "an error");
    assert_eq!(attr(&failed, "error.type").as_deref(), Some("connect"));

    // The upstream was given doorward's span as its parent, in the
    // caller's trace.
    let seen = upstream
        .requests()
        .into_iter()
        .rfind(|r| r.target == "/home/again")
        .expect("the upstream saw the request");
    let given = seen.header("traceparent").expect("a traceparent for the upstream");
    assert_eq!(given, format!("00-{CALLER_TRACE}-{}-01", hex(&exchange.span_id)));

    // The login's callback: the IdP's token endpoint and the store's
    // session write are its children.
    let callback = receiver
        .span("the callback", |s| {
            attr(s, "url.path").as_deref() == Some("/_doorward/callback")
        })
        .await;
    assert_eq!(hex(&callback.trace_id), CALLER_TRACE);
    let token = receiver
        .span("the token call", child_of(&callback, "doorward.idp"))
        .await;
    assert_eq!(token.kind, 3);
    assert!(
        attr(&token, "doorward.idp.endpoint").is_some(),
        "{:?}",
        attributes(&token.attributes)
    );
    // The IdP was given the token call's span as its parent, in the
    // caller's trace.
    let expected = format!("00-{CALLER_TRACE}-{}-01", hex(&token.span_id));
    let sent = idp.traceparents().await;
    assert!(
        sent.iter().any(|(path, value)| path == "/token" && *value == expected),
        "the token call carried {expected}: {sent:?}"
    );
    receiver
        .span("a store call", child_of(&callback, "doorward.store"))
        .await;

    // No secret of the run in any attribute: the session cookie, the
    // client secret, the session keys, the callback's code (no query).
    let mut secrets = vec![
        cookie.clone(),
        crate::idp::CLIENT_SECRET.to_string(),
        SESSION_KEY.to_string(),
    ];
    secrets.retain(|s| s.len() >= 8);
    for span in receiver.spans() {
        for (key, value) in attributes(&span.attributes) {
            for secret in &secrets {
                assert!(
                    !value.contains(secret.as_str()),
                    "{key} of {} carries a secret",
                    span.name
                );
            }
            assert!(
                !value.contains('?') && !value.contains("code="),
                "{key}={value} in {}",
                span.name
            );
            assert!(!key.contains("cookie") && !key.contains("authorization"), "{key}");
        }
    }
    let services = receiver
        .spans
        .lock()
        .expect("lock")
        .first()
        .map(|(r, _)| r.clone())
        .unwrap_or_default();
    assert!(
        services.contains(&("service.name".into(), "doorward-e2e".into())),
        "{services:?}"
    );

    // An untrusted caller's traceparent starts nothing: doorward here
    // trusts only 10.0.0.0/8, and the test calls from 127.0.0.1. Its batch
    // waits a minute: the span arrives because SIGTERM sends the last ones.
    drop(doorward);
    let untrusting_dir = tempfile::tempdir().expect("dir");
    let untrusting = traces
        .replace("127.0.0.0/8", "10.0.0.0/8")
        .replace("sample_ratio = 0.0", "sample_ratio = 1.0");
    let text = config(&base, &idp.issuer, &upstream.url(), untrusting_dir.path(), &untrusting);
    let file = write_config(&text);
    let doorward = serve_batching_every(file.path(), "60000");
    let forged = format!("00-{}-{}-01", "1".repeat(32), "2".repeat(16));
    let (status, _, _) = crate::support::get(doorward.addr, "/open/page", &[("traceparent", &forged)]).await;
    assert_eq!(status, 200);
    doorward.signal("TERM");
    let fresh = receiver
        .span("request for /open/page", |s| {
            attr(s, "url.path").as_deref() == Some("/open/page") && s.name == "GET"
        })
        .await;
    assert_ne!(
        hex(&fresh.trace_id),
        "1".repeat(32),
        "the untrusted trace is not continued"
    );
    assert!(fresh.parent_span_id.is_empty(), "a root of its own");
    let seen = upstream
        .requests()
        .into_iter()
        .rfind(|r| r.target == "/open/page")
        .expect("the upstream saw it");
    let given = seen.header("traceparent").expect("a traceparent for the upstream");
    assert!(given.starts_with(&format!("00-{}-", hex(&fresh.trace_id))), "{given}");

    // With traces off, nothing was sent: the traced instances' batches,
    // on the same schedule and all later, have arrived by now.
    assert_eq!(
        *off_receiver.posts.lock().expect("lock"),
        0,
        "traces off: nothing is exported"
    );
}
