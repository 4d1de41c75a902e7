//! `rewrite::Rewriter::prepare`: the upstream request as it leaves, for an
//! admitted caller and an anonymous one: identity headers set (and only
//! the computed ones), the assertion, hop-by-hop and doorward's own cookie
//! gone, forwarding headers, Host and the upstream URI.

use http::{HeaderValue, Method};

use super::super::errors::ProxyError;
use super::super::host::request_host;
use super::super::policy::{decide, Passage};
use super::super::rewrite::{Prepared, Request};
use super::harness::{empty, request, TestGateway};
use super::process::CONFIG;
use crate::respond::body::ClientBody;

/// Runs the request path's steps up to the upstream request for `req`:
/// strip, route, recognise, decide, prepare.
async fn prepare(g: &TestGateway, req: http::Request<impl ClientBody>) -> Result<Prepared, ProxyError> {
    let (mut parts, body) = req.into_parts();
    g.gateway.identity_headers.strip_incoming(&mut parts.headers);
    let path = parts.uri.path().to_string();
    let host = request_host(&parts.uri, &parts.headers)?;
    let route = g
        .gateway
        .routes
        .find(host.as_ref().map(|h| h.name.as_str()), &path)
        .ok_or(ProxyError::NoRoute)?;
    let recognised = g.t.auth.recognise(&parts.headers, route.rules.bearer).await;
    let passage: Passage = decide(route, &path, recognised, 0).map_err(|_| ProxyError::Unauthenticated)?;
    let id = HeaderValue::from_static("req-1");
    let request = Request {
        parts,
        body,
        path: &path,
        host: host.as_ref(),
        route,
        passage: &passage,
        conn: &g.conn,
        request_id: &id,
        upgrade: None,
    };
    g.gateway
        .rewrite
        .prepare(request, &g.gateway.signer, g.gateway.body_limits)
        .await
}

fn value<'a>(prepared: &'a Prepared, name: &str) -> Option<&'a str> {
    prepared.request.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_admitted_caller_reaches_the_upstream_as_computed_and_no_one_else() {
    let g = TestGateway::new(CONFIG).await;
    let cookie = g.session("u1", &["staff"]).await;
    let cookies = format!("theme=dark; {cookie}");
    let req = request(
        Method::GET,
        "https://dw.test/reports?q=1",
        &[
            ("cookie", cookies.as_str()),
            ("x-forwarded-user", "admin@example.com"),
            ("X-Forwarded-Groups", "admins"),
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "1"),
            ("keep-alive", "timeout=5"),
        ],
        empty(),
    );
    let prepared = prepare(&g, req).await.expect("prepared");
    let headers = prepared.request.headers();
    assert_eq!(value(&prepared, "x-forwarded-user"), Some("u1@example.com"));
    assert_eq!(headers.get_all("x-forwarded-groups").iter().count(), 1);
    assert_eq!(value(&prepared, "x-forwarded-groups"), Some("staff"));
    assert!(headers.contains_key(g.gateway.signer.header_name()));
    assert_eq!(value(&prepared, "x-request-id"), Some("req-1"));
    // doorward's session cookie is doorward's: the app gets the others.
    assert_eq!(value(&prepared, "cookie"), Some("theme=dark"));
    for gone in ["connection", "x-drop-me", "keep-alive"] {
        assert!(!headers.contains_key(gone), "{gone}");
    }
    // Routes keep the client's Host unless they say otherwise.
    assert_eq!(value(&prepared, "host"), Some("dw.test"));
    assert_eq!(value(&prepared, "x-forwarded-for"), Some("192.0.2.7"));
    assert_eq!(value(&prepared, "x-forwarded-proto"), Some("https"));
    assert_eq!(value(&prepared, "x-forwarded-host"), Some("dw.test"));
    assert_eq!(prepared.request.uri(), "/reports?q=1");
    assert_eq!(prepared.request.version(), http::Version::HTTP_11);
}

#[tokio::test]
async fn an_anonymous_caller_on_a_public_path_carries_no_identity() {
    let g = TestGateway::new(CONFIG).await;
    let req = request(
        Method::GET,
        "https://dw.test/public/logo.png",
        &[("x-forwarded-user", "admin@example.com"), ("x-forwarded-email", "a@b")],
        empty(),
    );
    let prepared = prepare(&g, req).await.expect("prepared");
    let headers = prepared.request.headers();
    assert!(!headers.contains_key("x-forwarded-user"));
    assert!(!headers.contains_key("x-forwarded-email"));
    assert!(!headers.contains_key(g.gateway.signer.header_name()));
}

#[tokio::test]
async fn the_upstream_base_path_is_prefixed_and_its_host_sent() {
    let g = TestGateway::new(CONFIG).await;
    let cookie = g.session("u1", &[]).await;
    let req = request(
        Method::POST,
        "https://api.dw.test/v1/items?page=2",
        &[("cookie", cookie.as_str())],
        http_body_util::Full::new(bytes::Bytes::from_static(b"{}")),
    );
    let prepared = prepare(&g, req).await.expect("prepared");
    assert_eq!(prepared.request.uri(), "/base/v1/items?page=2");
    // This route sends the upstream's own Host, and the client's along.
    assert_eq!(value(&prepared, "host"), Some("127.0.0.1:9"));
    assert_eq!(value(&prepared, "x-forwarded-host"), Some("api.dw.test"));
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let g = TestGateway::with_server("max_request_body = \"1KiB\"", CONFIG).await;
    let cookie = g.session("u1", &[]).await;
    let req = request(
        Method::POST,
        "https://dw.test/upload",
        &[("cookie", cookie.as_str()), ("content-length", "4096")],
        http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 4096])),
    );
    assert!(matches!(prepare(&g, req).await, Err(ProxyError::BodyTooLarge)));
}
