//! A client can never hand the upstream an identity: every spelling of every
//! identity header is removed on every method and path, and X-Forwarded-*
//! is believed only from trusted proxies.

use crate::support::{get, raw, Proxy, Upstream};

const IDENTITY: &[&str] = &[
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Roles",
    "X-Forwarded-Orgs",
    "X-Doorward-Assertion",
];

/// Every spoofing form of one header name: as configured, lower, upper,
/// mixed, underscores, and duplicates.
fn spoofs(name: &str) -> String {
    let underscore = name.replace('-', "_");
    [
        name.to_string(),
        name.to_ascii_lowercase(),
        name.to_ascii_uppercase(),
        underscore.clone(),
        underscore.to_ascii_lowercase(),
        name.to_string(),
    ]
    .iter()
    .map(|n| format!("{n}: mallory\r\n"))
    .collect()
}

fn assert_no_identity(seen: &crate::support::Seen, names: &[&str]) {
    for name in names {
        let leaked = seen.headers_folding_to(name);
        assert!(leaked.is_empty(), "{name} reached the upstream: {leaked:?}");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream_on_any_method() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let all: String = IDENTITY.iter().map(|n| spoofs(n)).collect();
    for method in ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"] {
        let before = upstream.requests().len();
        let request = format!(
            "{method} /some/page?x=1 HTTP/1.1\r\nHost: app.test\r\n{all}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let response = raw(proxy.addr, &request).await;
        assert_eq!(response.status, 200, "{method}: {}", response.head);
        let requests = upstream.requests();
        assert_eq!(requests.len(), before + 1, "{method} was forwarded once");
        assert_no_identity(&requests[before], IDENTITY);
    }
}

#[tokio::test]
async fn spoofed_headers_are_stripped_on_public_and_internal_paths_and_configured_names() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[headers]\nuser = \"Remote-User\"\nstrip = [\"X-Legacy-Auth\"]\n{}",
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    );
    let proxy = Proxy::start(&config).await;
    let names = [
        "Remote-User",
        "X-Legacy-Auth",
        "X-Forwarded-Groups",
        "X-Doorward-Assertion",
    ];
    let spoofed: String = names.iter().map(|n| spoofs(n)).collect();
    let request = format!("GET /public/app.js HTTP/1.1\r\nHost: app.test\r\n{spoofed}Connection: close\r\n\r\n");
    assert_eq!(raw(proxy.addr, &request).await.status, 200);
    assert_no_identity(&upstream.last(), &names);

    // The old default name is no longer doorward's, so it passes as any
    // other application header would.
    let (status, _, _) = get(proxy.addr, "/public/x", &[("X-Forwarded-User", "not-ours-now")]).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.last().header("x-forwarded-user"), Some("not-ours-now"));

    // doorward's own endpoints answer without forwarding anything.
    let before = upstream.requests().len();
    let request = format!("GET /_doorward/healthz HTTP/1.1\r\nHost: app.test\r\n{spoofed}Connection: close\r\n\r\n");
    assert_eq!(raw(proxy.addr, &request).await.status, 200);
    assert_eq!(upstream.requests().len(), before);
}

#[tokio::test]
async fn a_protected_path_is_refused_not_forwarded_with_spoofed_identity() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/public/\"]")).await;
    let request = format!(
        "GET /admin HTTP/1.1\r\nHost: app.test\r\n{}Connection: close\r\n\r\n",
        spoofs("X-Forwarded-User")
    );
    let response = raw(proxy.addr, &request).await;
    assert_eq!(response.status, 401);
    assert!(upstream.requests().is_empty(), "nothing reached the upstream");
    assert!(!response.body.contains("mallory"));
}

#[tokio::test]
async fn forwarding_headers_from_untrusted_clients_are_replaced() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&upstream.url(), "public = [\"/\"]")).await;
    let request = "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\n\
                   X-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Uri: /public/\r\n\
                   X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Original-URL: /public/\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.headers_folding_to("x-forwarded-for").len(),
        1,
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.test"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    for gone in ["x-forwarded-uri", "x-real-ip", "forwarded", "x-original-url"] {
        assert!(
            seen.headers_folding_to(gone).is_empty(),
            "{gone} leaked: {:?}",
            seen.headers
        );
    }
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_extended() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n{}",
        Proxy::route(&upstream.url(), "public = [\"/\"]")
    );
    let proxy = Proxy::start(&config).await;
    let request = "GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
                   X-Forwarded-Host: app.example.com\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.example.com"));
}

#[tokio::test]
async fn forwarded_host_never_picks_a_route() {
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let config = format!(
        "[[route]]\nname = \"open\"\nhost = \"open.test\"\nupstream = \"{}\"\npublic = [\"/\"]\n\n\
         [[route]]\nname = \"closed\"\nupstream = \"{}\"\n",
        other.url(),
        upstream.url()
    );
    let proxy = Proxy::start(&config).await;
    let request = "GET / HTTP/1.1\r\nHost: closed.test\r\nX-Forwarded-Host: open.test\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 401);
    assert!(other.requests().is_empty() && upstream.requests().is_empty());
    let request = "GET / HTTP/1.1\r\nHost: OPEN.test:8080\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(proxy.addr, request).await.status, 200);
    assert_eq!(other.requests().len(), 1);
}
