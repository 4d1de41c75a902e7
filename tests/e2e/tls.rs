//! TLS and HTTP/2: the TLS listener with ALPN (http/1.1 and h2), h2c with
//! prior knowledge in clear text, and https upstreams trusted through
//! `[upstream] ca_file`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::support::{echo_json, get, Proxy, Upstream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM
/// files into a directory that lives as long as this value.
struct TestCert {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
    key_der: PrivatePkcs8KeyDer<'static>,
}

impl TestCert {
    fn localhost() -> Self {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("generate certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key_pair.serialize_pem()).expect("write key");
        Self {
            _dir: dir,
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key_pair.serialize_der()),
        }
    }

    /// The `[server] tls = {...}` line for doorward.
    fn server_tls_line(&self) -> String {
        format!("tls = {{ cert = {:?}, key = {:?} }}", self.cert, self.key)
    }

    /// A client that trusts this certificate only and offers `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust the test cert");
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// doorward serving TLS with `cert`, in front of `upstream`, every path public.
async fn tls_proxy(cert: &TestCert, upstream: &Upstream, server_extra: &str) -> Proxy {
    Proxy::start(&format!(
        "[server]\n{}\n{server_extra}\n{}",
        cert.server_tls_line(),
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ))
    .await
}

async fn tls_connect(connector: &TlsConnector, addr: std::net::SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await
}

fn negotiated(stream: &TlsStream<TcpStream>) -> Option<String> {
    stream
        .get_ref()
        .1
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// One HTTP/1.1 GET over an already open connection.
async fn h1_get<IO>(io: IO, path: &str) -> (StatusCode, Version, Bytes)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("http/1.1 handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "app.test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    collect(sender.send_request(req).await.expect("response")).await
}

async fn collect(response: Response<Incoming>) -> (StatusCode, Version, Bytes) {
    let (status, version) = (response.status(), response.version());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, version, body)
}

/// An HTTP/2 client on an already open connection (TLS or clear).
async fn h2_client<IO>(io: IO) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// An HTTP/2 GET of an absolute URI: the host travels only as `:authority`
/// (hyper's h2 client sends no Host header).
async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    uri: &str,
) -> Result<(StatusCode, Version, Bytes), hyper::Error> {
    let req = Request::get(uri).body(Empty::<Bytes>::new()).expect("request");
    assert!(req.headers().get("host").is_none());
    let response = sender.send_request(req).await?;
    Ok(collect(response).await)
}

#[tokio::test]
async fn tls_listener_serves_http1_and_says_https_upstream() {
    let cert = TestCert::localhost();
    let upstream = Upstream::start().await;
    let proxy = tls_proxy(&cert, &upstream, "").await;

    let tls = tls_connect(&cert.client(&[b"http/1.1"]), proxy.addr)
        .await
        .expect("TLS handshake with doorward");
    assert_eq!(negotiated(&tls).as_deref(), Some("http/1.1"));
    let (status, version, body) = h1_get(tls, "/x?y=1").await;
    assert_eq!((status.as_u16(), version), (200, Version::HTTP_11));
    assert_eq!(echo_json(&body)["target"], "/x?y=1");
    let seen = upstream.last();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("host"), Some("app.test"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));

    // A client that speaks plain HTTP to the TLS port gets no HTTP answer
    // and reaches nothing behind doorward.
    let before = upstream.requests().len();
    let plain = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::get("/x")
            .header("host", "app.test")
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.send_request(req).await
    })
    .await
    .expect("the TLS port answers plain HTTP promptly");
    assert!(plain.is_err(), "plain HTTP on the TLS port: {plain:?}");
    assert_eq!(upstream.requests().len(), before);
}

#[tokio::test]
async fn tls_listener_negotiates_h2_and_sets_host_from_the_authority() {
    let cert = TestCert::localhost();
    let upstream = Upstream::start().await;
    let proxy = tls_proxy(&cert, &upstream, "").await;
    let port = proxy.addr.port();

    let tls = tls_connect(&cert.client(&[b"h2", b"http/1.1"]), proxy.addr)
        .await
        .expect("TLS handshake with doorward");
    assert_eq!(negotiated(&tls).as_deref(), Some("h2"));
    let mut sender = h2_client(tls).await;

    // Several requests multiplexed on the one connection.
    let uris: Vec<String> = (0..3)
        .map(|i| format!("https://localhost:{port}/h2/{i}?q={i}"))
        .collect();
    let mut tasks = Vec::new();
    for uri in &uris {
        let mut sender = sender.clone();
        let uri = uri.clone();
        tasks.push(tokio::spawn(async move { h2_get(&mut sender, &uri).await }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, version, body) = task.await.expect("task").expect("h2 response");
        assert_eq!((status.as_u16(), version), (200, Version::HTTP_2));
        assert_eq!(echo_json(&body)["target"], format!("/h2/{i}?q={i}"));
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3);
    let authority = format!("localhost:{port}");
    for seen in &seen {
        assert!(seen.target.starts_with("/h2/"), "{}", seen.target);
        assert_eq!(
            seen.headers_folding_to("host").len(),
            1,
            "exactly one Host upstream: {:?}",
            seen.headers
        );
        assert_eq!(seen.header("host"), Some(authority.as_str()));
        assert_eq!(seen.header("x-forwarded-host"), Some(authority.as_str()));
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    }
    // The upstream is spoken to in HTTP/1.1 whatever the client spoke.
    let (status, _, _) = h2_get(&mut sender, &format!("https://localhost:{port}/again"))
        .await
        .expect("a later request on the same connection");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tls_listener_without_http2_refuses_h2_only_clients() {
    let cert = TestCert::localhost();
    let upstream = Upstream::start().await;
    let proxy = tls_proxy(&cert, &upstream, "http2 = false").await;

    // RFC 7301: with no protocol in common the server aborts the handshake
    // with a fatal no_application_protocol alert.
    let err = tls_connect(&cert.client(&[b"h2"]), proxy.addr)
        .await
        .expect_err("no h2 without http2");
    let rustls_error = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {err:?}"));
    assert_eq!(
        rustls_error,
        &rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol),
        "{err}"
    );

    // A client offering both falls back to HTTP/1.1, which works.
    let tls = tls_connect(&cert.client(&[b"h2", b"http/1.1"]), proxy.addr)
        .await
        .expect("TLS handshake with doorward");
    assert_eq!(negotiated(&tls).as_deref(), Some("http/1.1"));
    let (status, version, _) = h1_get(tls, "/fallback").await;
    assert_eq!((status.as_u16(), version), (200, Version::HTTP_11));
    assert_eq!(upstream.last().target, "/fallback");

    // And one offering no ALPN at all gets HTTP/1.1 too.
    let tls = tls_connect(&cert.client(&[]), proxy.addr)
        .await
        .expect("TLS handshake without ALPN");
    assert_eq!(negotiated(&tls), None);
    let (status, _, _) = h1_get(tls, "/no-alpn").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_works_by_default_and_not_when_off() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    let mut sender = h2_client(tcp).await;
    let authority = proxy.addr.to_string();
    let (status, version, body) = h2_get(&mut sender, &format!("http://{authority}/h2c?a=b"))
        .await
        .expect("h2c response");
    assert_eq!((status.as_u16(), version), (200, Version::HTTP_2));
    assert_eq!(echo_json(&body)["target"], "/h2c?a=b");
    let seen = upstream.last();
    assert_eq!(seen.header("host"), Some(authority.as_str()));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    // HTTP/1.1 on the same port still works.
    let (status, _, _) = get(proxy.addr, "/h1", &[]).await;
    assert_eq!(status, 200);

    let off = Proxy::start(&format!(
        "[server]\nhttp2 = false\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    ))
    .await;
    let before = upstream.requests().len();
    let attempt = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let tcp = TcpStream::connect(off.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        h2_get(&mut sender, &format!("http://{}/h2c", off.addr)).await
    })
    .await
    .expect("an h2c attempt on an HTTP/1.1-only listener ends promptly");
    assert!(attempt.is_err(), "h2c with http2 = false: {attempt:?}");
    assert_eq!(upstream.requests().len(), before);
}

/// An https-only upstream with its own self-signed certificate.
struct TlsUpstream {
    port: u16,
    cert: TestCert,
    served: Arc<AtomicUsize>,
    failed_handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsUpstream {
    async fn start() -> Self {
        let cert = TestCert::localhost();
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der.clone()], cert.key_der.clone_key().into())
            .expect("server cert");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = Arc::new(AtomicUsize::new(0));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let (count, failed) = (Arc::clone(&served), Arc::clone(&failed_handshakes));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, count, failed) = (acceptor.clone(), Arc::clone(&count), Arc::clone(&failed));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"tls upstream",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            port,
            cert,
            served,
            failed_handshakes,
            task,
        }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn https_upstream_is_trusted_through_ca_file_and_only_then() {
    let upstream = TlsUpstream::start().await;
    let route = format!(
        "[[route]]\nname = \"app\"\nupstream = \"https://localhost:{}\"\npublic = [\"/\"]\n",
        upstream.port
    );

    let trusting = Proxy::start(&format!("[upstream]\nca_file = {:?}\n{route}", upstream.cert.cert)).await;
    let (status, _, body) = get(trusting.addr, "/hello", &[]).await;
    assert_eq!(
        (status.as_u16(), String::from_utf8_lossy(&body).as_ref()),
        (200, "tls upstream")
    );
    assert_eq!(upstream.served.load(Ordering::SeqCst), 1);
    assert_eq!(upstream.failed_handshakes.load(Ordering::SeqCst), 0);

    // System roots only: the self-signed upstream is not trusted.
    let system_roots = Proxy::start(&route).await;
    let (status, _, body) = get(system_roots.addr, "/hello", &[]).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert!(!String::from_utf8_lossy(&body).contains("tls upstream"));
    assert_eq!(upstream.served.load(Ordering::SeqCst), 1, "no request got through");
    assert_eq!(
        upstream.failed_handshakes.load(Ordering::SeqCst),
        1,
        "doorward reached the upstream and refused its certificate"
    );
    let (_, _, metrics) = get(system_roots.addr, "/_doorward/metrics", &[]).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(r#"doorward_upstream_errors_total{route="app",kind="tls"} 1"#),
        "{metrics}"
    );
}
