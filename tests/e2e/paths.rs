//! Path tricks cannot make a protected path match a public rule, and the
//! upstream receives exactly the normalised path doorward matched.

use crate::support::{raw, Proxy, Upstream};

async fn setup() -> (Upstream, Proxy) {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(
        &upstream.url(),
        "public = [\"/public/\", \"/api/health\"]",
    ))
    .await;
    (upstream, proxy)
}

async fn request(proxy: &Proxy, target: &str) -> u16 {
    let text = format!("GET {target} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    raw(proxy.addr, &text).await.status
}

#[tokio::test]
async fn tricks_that_aim_a_public_rule_at_a_protected_path_are_refused() {
    let (upstream, proxy) = setup().await;
    // Each of these names /admin (or another protected path) in a way some
    // server would resolve; none may be treated as public.
    let protected = [
        "/public/../admin",
        "/public/./../admin",
        "//public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/..;/admin",
        "/public;x=1/../admin",
        "/public/..%3b/admin",
        "/PUBLIC/app.js",
        "/Public/app.js",
        "/api/health/../../admin",
        "/api/healthz",
        "/api/health/x",
        "/API/HEALTH",
        "/admin?/public/",
        "/admin?x=/public/",
        "/admin%3F/public/",
        "/admin%23/public/",
        "/%2fpublic/../admin",
    ];
    for target in protected {
        let status = request(&proxy, target).await;
        assert!(
            status == 401 || status == 400,
            "{target} was answered {status}, not refused"
        );
    }
    assert!(upstream.requests().is_empty(), "forwarded: {:?}", upstream.requests());
}

#[tokio::test]
async fn encoded_slashes_backslashes_and_bad_escapes_are_bad_requests() {
    let (upstream, proxy) = setup().await;
    for target in [
        "/public/..%2fadmin",
        "/public/..%2Fadmin",
        "/public/..%5cadmin",
        "/public/%2e%2e%2fadmin",
        "/public/%",
        "/public/%zz",
        "/public/%00",
    ] {
        assert_eq!(request(&proxy, target).await, 400, "{target}");
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn fragments_never_reach_matching_or_the_upstream_as_path() {
    let (upstream, proxy) = setup().await;
    let status = request(&proxy, "/admin#/public/").await;
    assert!(status == 400 || status == 401, "answered {status}");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn the_upstream_receives_the_normalised_path_and_untouched_query() {
    let (upstream, proxy) = setup().await;
    let cases = [
        ("/public/app.js", "/public/app.js"),
        ("/public//app.js", "/public/app.js"),
        ("/public/./x/../app.js", "/public/app.js"),
        ("/public/%61pp.js", "/public/app.js"),
        ("/public/a%20b.js", "/public/a%20b.js"),
        ("/public/a;v=2.js", "/public/a"),
        ("/x/../public/y", "/public/y"),
        ("/public/q?next=/admin&a=%2F..", "/public/q?next=/admin&a=%2F.."),
        ("/api/health", "/api/health"),
        ("/api/health?full=1", "/api/health?full=1"),
    ];
    for (sent, want) in cases {
        assert_eq!(request(&proxy, sent).await, 200, "{sent}");
        assert_eq!(upstream.last().target, want, "{sent}");
    }
}

#[tokio::test]
async fn routes_match_longest_prefix_on_segment_boundaries_ignoring_case() {
    let open = Upstream::start().await;
    let admin = Upstream::start().await;
    let config = format!(
        "[[route]]\nname = \"open\"\nupstream = \"{}\"\npublic = [\"/\"]\n\n\
         [[route]]\nname = \"admin\"\npath_prefix = \"/admin\"\nupstream = \"{}\"\n",
        open.url(),
        admin.url()
    );
    let proxy = Proxy::start(&config).await;
    // /ADMIN and /admin/ variants go to the stricter route, never the open one.
    for target in ["/admin", "/ADMIN", "/Admin/x", "/x/../admin/y", "//admin"] {
        assert_eq!(request(&proxy, target).await, 401, "{target}");
    }
    assert!(open.requests().is_empty());
    // A prefix matches whole segments only.
    assert_eq!(request(&proxy, "/administrator").await, 200);
    assert_eq!(open.last().target, "/administrator");
}

#[tokio::test]
async fn an_upstream_base_path_is_prepended() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&Proxy::route(&format!("{}/base/", upstream.url()), "public = [\"/\"]")).await;
    assert_eq!(request(&proxy, "/x/../y?z=1").await, 200);
    assert_eq!(upstream.last().target, "/base/y?z=1");
}

#[tokio::test]
async fn escaped_slashes_can_be_decoded_into_separators() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[server]\ninsecure_decode_escaped_slashes = true\n{}",
        Proxy::route(&upstream.url(), "public = [\"/public/\"]")
    );
    let proxy = Proxy::start(&config).await;
    // Decoded, the trick resolves to /admin: protected, not public.
    assert_eq!(request(&proxy, "/public/..%2fadmin").await, 401);
    assert!(upstream.requests().is_empty());
    assert_eq!(request(&proxy, "/public/a%2Fb").await, 200);
    assert_eq!(upstream.last().target, "/public/a/b");
}
