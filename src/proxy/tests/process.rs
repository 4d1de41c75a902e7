//! `Gateway::process` and `handle` step by step: bad paths, doorward's own
//! endpoints, routing, the login redirect, 401 for API clients, 403 by the
//! rules, and what every answer carries (request id, no client identity).

use http::{Method, StatusCode};

use super::super::errors::ProxyError;
use super::super::Listener;
use super::harness::{conn, get, header, text, TestGateway};
use crate::auth::endpoints::tests::harness::CORP;
use crate::auth::AuthError;
use crate::paths::PathError;

pub(super) const CONFIG: &str = r#"
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"
bearer_audiences = ["dw-api"]

[[provider]]
name = "partners"
kind = "oidc"
issuer = "https://partners.test"
client_id = "doorward"

[identity.roles]
from_groups = ["admins"]

[[route]]
name = "admin"
path_prefix = "/admin"
upstream = "http://127.0.0.1:9"
require_roles = ["admins"]

[[route]]
name = "partners"
path_prefix = "/partners"
upstream = "http://127.0.0.1:9"
provider = "partners"

[[route]]
name = "api"
host = "api.dw.test"
upstream = "http://127.0.0.1:9/base"
bearer = true
preserve_host = false

[[route]]
name = "app"
upstream = "http://127.0.0.1:9"
public = ["/public/"]
"#;

#[tokio::test]
async fn a_browser_without_a_session_is_sent_to_log_in_and_back() {
    let g = TestGateway::new(CONFIG).await;
    let reply = g.handle(get("https://dw.test/reports/q1?year=2024&x=%2F", &[])).await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(
        header(&reply, "location"),
        "/_doorward/login?rd=%2Freports%2Fq1%3Fyear%3D2024%26x%3D%252F"
    );
    assert_eq!(header(&reply, "cache-control"), "no-store");
    assert!(!header(&reply, "x-request-id").is_empty());
}

#[tokio::test]
async fn a_route_pinned_to_a_provider_sends_its_login_there() {
    let g = TestGateway::new(CONFIG).await;
    let reply = g.handle(get("https://dw.test/partners/home", &[])).await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(
        header(&reply, "location"),
        "/_doorward/login?rd=%2Fpartners%2Fhome&provider=partners"
    );
    // A session from another provider is nobody here: log in again.
    let cookie = g.session("u1", &[]).await;
    let reply = g
        .handle(get("https://dw.test/partners/home", &[("cookie", &cookie)]))
        .await;
    assert_eq!(reply.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn api_clients_get_401_not_a_redirect() {
    let g = TestGateway::new(CONFIG).await;
    for headers in [
        [("accept", "application/json")],
        [("authorization", "Basic dTpw")],
        [("x-requested-with", "XMLHttpRequest")],
    ] {
        let result = g.process(get("https://dw.test/reports", &headers)).await;
        assert!(matches!(result, Err(ProxyError::Unauthenticated)), "{headers:?}");
    }
    let reply = g
        .handle(get("https://dw.test/reports", &[("accept", "application/json")]))
        .await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&reply, "content-type").starts_with("application/json"));
}

#[tokio::test]
async fn a_bearer_route_checks_the_token_before_anything_passes() {
    let g = TestGateway::new(CONFIG).await;
    let result = g
        .process(get(
            "https://api.dw.test/v1/items",
            &[("authorization", "Bearer not-a-jwt")],
        ))
        .await;
    assert!(
        matches!(result, Err(ProxyError::Unauthenticated) | Err(ProxyError::Auth(_))),
        "{:?}",
        result.map(|r| r.status())
    );
}

#[tokio::test]
async fn the_rules_refuse_with_403_and_say_whom() {
    let g = TestGateway::new(CONFIG).await;
    let cookie = g.session("u1", &["staff"]).await;
    let result = g
        .process(get("https://dw.test/admin/users", &[("cookie", &cookie)]))
        .await;
    match result {
        Err(ProxyError::Forbidden(denial)) => assert_eq!(denial.account, "u1@example.com"),
        other => panic!("expected Forbidden, got {:?}", other.map(|r| r.status())),
    }
    let reply = g
        .handle(get("https://dw.test/admin/users", &[("cookie", &cookie)]))
        .await;
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn paths_that_do_not_normalise_are_refused_first() {
    let g = TestGateway::new(CONFIG).await;
    let result = g.process(get("https://dw.test/a%2Fb", &[])).await;
    assert!(
        matches!(result, Err(ProxyError::BadPath(PathError::EscapedSlash))),
        "{:?}",
        result.map(|r| r.status())
    );
    let reply = g.handle(get("https://dw.test/a%2Fb", &[])).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn doorward_endpoints_answer_under_the_prefix_and_nowhere_else() {
    let g = TestGateway::new(CONFIG).await;
    let reply = g.handle(get("https://dw.test/_doorward/healthz", &[])).await;
    assert_eq!(reply.status(), StatusCode::OK);
    // The login chooser (two providers) comes from the auth endpoints.
    let reply = g.handle(get("https://dw.test/_doorward/login", &[])).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(text(reply).await.contains("partners"));
    let result = g.process(get("https://dw.test/_doorward/nope", &[])).await;
    assert!(
        matches!(result, Err(ProxyError::NotFound)),
        "{:?}",
        result.map(|r| r.status())
    );
    let result = g
        .process(super::harness::request(
            Method::DELETE,
            "https://dw.test/_doorward/userinfo",
            &[],
            super::harness::empty(),
        ))
        .await;
    assert!(matches!(result, Err(ProxyError::Auth(AuthError::MethodNotAllowed))));
}

#[tokio::test]
async fn a_client_cannot_name_itself_to_doorward_endpoints() {
    let g = TestGateway::new(CONFIG).await;
    let reply = g
        .handle(get(
            "https://dw.test/_doorward/auth",
            &[
                ("x-forwarded-user", "admin@example.com"),
                ("x-forwarded-groups", "admins"),
            ],
        ))
        .await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&reply, "x-forwarded-user"), "");
    let cookie = g.session("u1", &["staff"]).await;
    let reply = g
        .handle(get(
            "https://dw.test/_doorward/auth",
            &[("cookie", &cookie), ("x-forwarded-user", "admin@example.com")],
        ))
        .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(header(&reply, "x-forwarded-user"), "u1@example.com");
}

#[tokio::test]
async fn a_plain_request_id_is_kept_and_any_other_replaced() {
    let g = TestGateway::new(CONFIG).await;
    let reply = g
        .handle(get("https://dw.test/_doorward/healthz", &[("x-request-id", "abc-123")]))
        .await;
    assert_eq!(header(&reply, "x-request-id"), "abc-123");
    let reply = g
        .handle(get(
            "https://dw.test/_doorward/healthz",
            &[("x-request-id", "<script>")],
        ))
        .await;
    let id = header(&reply, "x-request-id");
    assert!(!id.is_empty() && id != "<script>");
}

#[tokio::test]
async fn the_metrics_listener_serves_operations_only() {
    let mut g = TestGateway::new(CONFIG).await;
    g.conn = conn(Listener::Metrics);
    let reply = g.handle(get("http://dw.test/healthz", &[])).await;
    assert_eq!(reply.status(), StatusCode::OK);
    let result = g.process(get("http://dw.test/_doorward/login", &[])).await;
    assert!(
        matches!(result, Err(ProxyError::NotFound)),
        "{:?}",
        result.map(|r| r.status())
    );
    let result = g.process(get("http://dw.test/login", &[])).await;
    assert!(
        matches!(result, Err(ProxyError::NotFound)),
        "{:?}",
        result.map(|r| r.status())
    );
}

#[tokio::test]
async fn the_scim_listener_without_scim_finds_nothing() {
    let mut g = TestGateway::new(CONFIG).await;
    g.conn = conn(Listener::Scim);
    let result = g.process(get("https://dw.test/scim/v2/Users", &[])).await;
    assert!(
        matches!(result, Err(ProxyError::NotFound)),
        "{:?}",
        result.map(|r| r.status())
    );
}

/// A route asking for a stronger login than the session's (after the
/// harness's `corp` provider).
const STEP_UP: &str = r#"
[[route]]
name = "payroll"
path_prefix = "/payroll"
upstream = "http://127.0.0.1:9"
acr = ["urn:mfa", "urn:phr"]
max_age = "10m"

[[route]]
name = "app"
upstream = "http://127.0.0.1:9"
"#;

#[tokio::test]
async fn a_weak_session_steps_up_at_its_own_provider_and_an_api_client_gets_the_rfc_9470_challenge() {
    let g = TestGateway::new(&format!("{CORP}{STEP_UP}")).await;
    let cookie = g.session("u1", &[]).await;
    // No acr at all on this session's login: the route sends it to step up.
    let reply = g
        .handle(get("https://dw.test/payroll/slips", &[("cookie", &cookie)]))
        .await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(
        header(&reply, "location"),
        "/_doorward/login?rd=%2Fpayroll%2Fslips&provider=corp&route=payroll"
    );
    // Without a session the login is asked for the route's assurance too.
    let reply = g.handle(get("https://dw.test/payroll/slips", &[])).await;
    assert_eq!(
        header(&reply, "location"),
        "/_doorward/login?rd=%2Fpayroll%2Fslips&route=payroll"
    );
    let reply = g
        .handle(get(
            "https://dw.test/payroll/slips",
            &[("cookie", &cookie), ("accept", "application/json")],
        ))
        .await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&reply, "www-authenticate"),
        "Bearer realm=\"doorward\", error=\"insufficient_user_authentication\", \
         error_description=\"A different authentication level is required\", \
         acr_values=\"urn:mfa urn:phr\", max_age=\"600\""
    );
    // The route that asks nothing admits the same session: it is
    // forwarded (to an upstream that is not there).
    let result = g.process(get("https://dw.test/home", &[("cookie", &cookie)])).await;
    assert!(
        matches!(result, Err(ProxyError::Upstream(_))),
        "{:?}",
        result.map(|r| r.status())
    );
}
