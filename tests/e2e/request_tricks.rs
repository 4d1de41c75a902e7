//! Requests crafted byte by byte (a client library would tidy them up):
//! Host tricks that could make doorward route one app and the upstream
//! serve another, path-rewrite headers that would make the upstream serve
//! another path than the one doorward authorized, and oversized heads.

use crate::support::{raw, raw_bytes, Proxy, Upstream};

/// `app.test` (public, its own upstream) and every other host (public,
/// another upstream): a host trick shows up as the wrong upstream.
async fn two_hosts() -> (Upstream, Upstream, Proxy) {
    let app = Upstream::start().await;
    let other = Upstream::start().await;
    let config = format!(
        "[[route]]\nname = \"app\"\nhost = \"app.test\"\nupstream = \"{}\"\npublic = [\"/\"]\n\n\
         [[route]]\nname = \"other\"\nupstream = \"{}\"\npublic = [\"/\"]\n",
        app.url(),
        other.url()
    );
    let proxy = Proxy::start(&config).await;
    (app, other, proxy)
}

#[tokio::test]
async fn a_trailing_dot_routes_as_the_canonical_host_and_the_upstream_gets_it() {
    let (app, other, proxy) = two_hosts().await;
    for host in ["app.test.", "APP.Test.", "app.test.:8080"] {
        let request = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(proxy.addr, &request).await.status, 200, "{host}");
        let seen = app.last();
        let canonical = if host.ends_with(":8080") {
            "app.test:8080"
        } else {
            "app.test"
        };
        assert_eq!(seen.header("host"), Some(canonical), "{host}");
        assert_eq!(seen.header("x-forwarded-host"), Some(canonical), "{host}");
    }
    assert_eq!(app.requests().len(), 3);
    assert!(other.requests().is_empty(), "never routed elsewhere");
}

#[tokio::test]
async fn host_tricks_are_refused_with_400_before_any_routing() {
    let (app, other, proxy) = two_hosts().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "non-ASCII Host",
            b"GET /x HTTP/1.1\r\nHost: app.t\xc3\xa9st\r\n".to_vec(),
        ),
        ("obs-text Host", b"GET /x HTTP/1.1\r\nHost: app.test\xff\r\n".to_vec()),
        (
            "userinfo in Host",
            b"GET /x HTTP/1.1\r\nHost: evil@app.test\r\n".to_vec(),
        ),
        (
            "userinfo with a port",
            b"GET /x HTTP/1.1\r\nHost: app.test:80@evil.test\r\n".to_vec(),
        ),
        (
            "duplicate Host",
            b"GET /x HTTP/1.1\r\nHost: other.test\r\nHost: app.test\r\n".to_vec(),
        ),
        (
            "absolute form naming another host",
            b"GET http://other.test/x HTTP/1.1\r\nHost: app.test\r\n".to_vec(),
        ),
        (
            "absolute form naming app.test, Host another",
            b"GET http://app.test/x HTTP/1.1\r\nHost: other.test\r\n".to_vec(),
        ),
        (
            "absolute form with userinfo",
            b"GET http://evil@app.test/x HTTP/1.1\r\nHost: app.test\r\n".to_vec(),
        ),
    ];
    for (what, mut request) in cases {
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        let response = raw_bytes(proxy.addr, &request).await;
        assert_eq!(response.status, 400, "{what}: {}", response.head);
        // doorward's own refusal (it carries the request id), not the
        // HTTP parser's: the check that stops it is doorward's Host check.
        assert!(
            response.head.to_ascii_lowercase().contains("x-request-id"),
            "{what}: {}",
            response.head
        );
    }
    assert!(
        app.requests().is_empty() && other.requests().is_empty(),
        "nothing was forwarded: {:?} {:?}",
        app.requests(),
        other.requests()
    );

    // The same host in absolute form and Host, in another spelling, is fine.
    let request = "GET http://APP.test./x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    assert_eq!(app.last().header("host"), Some("app.test"));
    assert_eq!(app.last().target, "/x", "the upstream gets origin form");
}

#[tokio::test]
async fn path_rewrite_headers_never_reach_the_upstream_even_from_a_trusted_proxy() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{}",
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    );
    let proxy = Proxy::start(&config).await;
    let rewrites = [
        "X-Original-URL: /admin",
        "X-Original-URI: /admin",
        "X-Rewrite-URL: /admin",
        "X-Forwarded-Prefix: /admin",
        "X-Forwarded-Uri: /admin",
        "X-Forwarded-Path: /admin",
        "x_original_url: /admin",
        "X-REWRITE-URL: /admin",
    ];
    let request = format!(
        "GET /public/page HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 203.0.113.7\r\n{}\r\n\
         Connection: close\r\n\r\n",
        rewrites.join("\r\n")
    );
    assert_eq!(raw(proxy.addr, &request).await.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.target, "/public/page");
    // The peer is trusted (its forwarding chain is kept)...
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    // ...and still no path it names reaches the upstream.
    for name in [
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "x-forwarded-prefix",
        "x-forwarded-uri",
        "x-forwarded-path",
    ] {
        let leaked = seen.headers_folding_to(name);
        assert!(leaked.is_empty(), "{name} reached the upstream: {leaked:?}");
    }
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains("/admin")),
        "{:?}",
        seen.headers
    );
}

#[tokio::test]
async fn a_client_cannot_replace_its_address_in_a_trusted_proxys_chain() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    );
    let proxy = Proxy::start(&config).await;
    // As HAProxy forwards it: the client's own line, then the line the
    // proxy appended with the client's real address.
    let request = "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n\
                   X-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.headers_folding_to("x-forwarded-for").len(), 1);
    assert_eq!(seen.header("x-forwarded-for"), Some("6.6.6.6, 203.0.113.7, 127.0.0.1"));
    // As nginx forwards it (one joined line): a hop that is not ASCII does
    // not make the real address vanish.
    let request = [
        &b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: \xff, 203.0.113.7\r\n"[..],
        b"Connection: close\r\n\r\n",
    ]
    .concat();
    assert_eq!(raw_bytes(proxy.addr, &request).await.status, 200);
    let chain = upstream
        .last()
        .header("x-forwarded-for")
        .unwrap_or_default()
        .to_string();
    assert!(chain.ends_with(", 203.0.113.7, 127.0.0.1"), "{chain}");
}

#[tokio::test]
async fn an_oversized_request_head_gets_431_and_is_not_forwarded() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\nmax_header_bytes = \"16KiB\"\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    );
    let proxy = Proxy::start(&config).await;
    let head = |extra: &str| format!("GET /x HTTP/1.1\r\nHost: app.test\r\n{extra}Connection: close\r\n\r\n");

    // Just under the limit passes.
    let fits = format!("X-Big: {}\r\n", "a".repeat(12 * 1024));
    assert_eq!(raw(proxy.addr, &head(&fits)).await.status, 200);
    let forwarded = upstream.requests().len();
    // One huge header, many small ones, a huge cookie, a huge target.
    let cases = [
        ("one header", format!("X-Big: {}\r\n", "a".repeat(20 * 1024))),
        (
            "many headers",
            (0..400).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(60))).collect(),
        ),
        ("a cookie", format!("Cookie: c={}\r\n", "c".repeat(20 * 1024))),
    ];
    for (what, extra) in cases {
        let response = raw(proxy.addr, &head(&extra)).await;
        assert_eq!(response.status, 431, "{what}: {}", response.head);
    }
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        "d".repeat(20 * 1024)
    );
    assert_eq!(raw(proxy.addr, &long_target).await.status, 431, "a long target");
    assert_eq!(upstream.requests().len(), forwarded, "nothing oversized was forwarded");
}
