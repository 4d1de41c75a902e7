//! The identity engine end to end: per-route overrides and requirements,
//! login allowlists, the signed assertion, the debug view, `explain`, and
//! fetching a distributed groups claim.

use std::process::Command;

use serde_json::{json, Value};

use crate::idp::Browser;
use crate::scenario::{Options, Scenario};
use crate::support::write_config;

#[tokio::test]
async fn the_mapped_identity_and_its_signed_assertion_reach_the_upstream() {
    let s = Scenario::start(Options {
        extra: "\n[identity.groups]\nmapping = { engineers = \"developers\" }\n[identity.roles]\nfrom_groups = [\"staff\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    let mut alice = Browser::default();
    let page = alice.login(&s.url("/home"), "alice", &s.idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = s.upstream.last();
    assert_eq!(
        seen.header("x-forwarded-groups"),
        Some("developers,staff"),
        "global mapping"
    );
    assert_eq!(
        seen.header("x-forwarded-roles"),
        Some("staff"),
        "role from a role-named group"
    );

    let assertion = seen
        .header("x-doorward-assertion")
        .expect("signed assertion")
        .to_string();
    let payload = assertion.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["groups"], json!(["developers", "staff"]));
    let jwks = alice.get(&s.url("/_doorward/jwks.json")).await.json();
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
}

#[tokio::test]
async fn a_user_outside_the_login_allowlist_is_refused_without_a_session() {
    let s = Scenario::start(Options {
        extra: "\n[identity.login]\nallowed_email_domains = [\"example.com\"]\n".into(),
        ..Options::default()
    })
    .await;
    // Verified, but outside the allowed domains: refused by policy.
    s.idp
        .set_account(
            "eve",
            &json!({"email": "eve@elsewhere.test", "email_verified": true, "preferred_username": "eve"}),
        )
        .await;
    let mut eve = Browser::default();
    let page = eve.login(&s.url("/"), "eve", &s.idp).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Access denied"));
    assert!(!page.body.contains("example.com"), "the page does not leak the rules");
    assert!(eve.cookie("doorward").is_none(), "no session for a refused login");
    let alice = s.logged_in("alice", "/").await;
    assert!(alice.cookie("doorward").is_some());
}

#[tokio::test]
async fn route_requirements_and_overrides_apply_per_route() {
    let s = Scenario::start(Options {
        extra: "\n[identity.groups]\nmapping = { engineers = \"developers\" }\n\n\
                [[route]]\nname = \"grafana\"\npath_prefix = \"/grafana\"\nupstream = \"http://127.0.0.1:9\"\n\
                require_groups = [\"Editor\"]\n[route.identity.groups]\nmapping = { engineers = \"Editor\" }\n"
            .into(),
        ..Options::default()
    })
    .await;
    // bob (Marketing Team) may use the app but not the grafana route.
    let mut bob = s.logged_in("bob", "/").await;
    let page = bob.get(&s.url("/grafana/d/1")).await;
    assert_eq!(page.status, 403);
    assert!(!page.body.contains("Editor"), "the page does not leak the rule");
    // alice maps to Editor there (and the route's upstream is unreachable,
    // so a 502 proves the request was authorized and forwarded).
    let mut alice = s.logged_in("alice", "/").await;
    assert_eq!(s.upstream.last().header("x-forwarded-groups"), Some("developers,staff"));
    assert_eq!(alice.get(&s.url("/grafana/d/1")).await.status, 502);
}

#[tokio::test]
async fn the_debug_view_explains_the_identity_to_admins_only() {
    let s = Scenario::start(Options {
        extra: "\n[identity]\ndebug_roles = [\"staff\"]\n[identity.roles]\nfrom_groups = [\"staff\"]\n".into(),
        ..Options::default()
    })
    .await;
    let mut alice = s.logged_in("alice", "/").await;
    let page = alice.get(&s.url("/_doorward/debug")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let debug = page.json();
    assert_eq!(debug["claims"]["merged"]["email"], "alice@example.com");
    assert!(debug["claims"]["id_token"].is_object() && debug["claims"]["userinfo"].is_object());
    assert_eq!(debug["identity"]["identity"]["roles"], json!(["staff"]));
    let reasons = debug["identity"]["reasons"].as_array().expect("reasons");
    assert!(reasons.iter().any(|r| r["value"] == "staff" && r["part"] == "role"));
    assert!(!page.body.contains("eyJ"), "no token ever appears in the debug view");
    assert!(!page.body.contains("access_token") && !page.body.contains("refresh_token"));

    let mut bob = s.logged_in("bob", "/").await;
    assert_eq!(bob.get(&s.url("/_doorward/debug")).await.status, 403);
    assert_eq!(Browser::default().get(&s.url("/_doorward/debug")).await.status, 401);
}

fn explain(config: &str, claims: &Value, args: &[&str]) -> (i32, String) {
    let config = write_config(config);
    let claims_file = write_config(&claims.to_string());
    let output = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .arg("explain")
        .arg("--config")
        .arg(config.path())
        .args(args)
        .arg(claims_file.path())
        .output()
        .expect("run explain");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn explain_shows_identity_reasons_and_denial() {
    let config = "[identity.groups]\nmapping = { engineers = [\"developers\", \"staff\"] }\nregex_filter = \"^(developers|staff)$\"\n\
                  [identity.login]\nallowed_groups = [\"staff\"]\n\n\
                  [[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n\n\
                  [[route]]\nname = \"grafana\"\npath_prefix = \"/g\"\nupstream = \"http://127.0.0.1:1\"\n\
                  [route.identity.groups]\nmapping = { engineers = \"Editor\" }\nregex_filter = \"^Editor$\"\n\
                  [route.identity.login]\nallowed_groups = [\"Editor\"]\n";
    let claims = json!({"sub": "u1", "email": "u1@example.com", "groups": ["engineers", "randos"]});
    let (code, out) = explain(config, &claims, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let outcome: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(outcome["identity"]["groups"], json!(["developers", "staff"]));
    assert_eq!(outcome["login"]["allowed"], true);
    let reasons = outcome["reasons"].as_array().expect("reasons");
    assert!(reasons
        .iter()
        .any(|r| r["value"] == "randos" && r["action"] == "dropped"));

    let (code, out) = explain(config, &claims, &["--route", "grafana"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("groups:   Editor"), "{out}");
    assert!(out.contains("mapping: `engineers` -> `Editor`"), "{out}");

    let outsider = json!({"sub": "u2", "groups": ["randos"]});
    let (code, out) = explain(config, &outsider, &[]);
    assert_eq!(code, 3, "a refused login exits 3: {out}");
    assert!(out.contains("DENIED"), "{out}");
    let (code, _) = explain(config, &outsider, &["--route", "nope"]);
    assert_eq!(code, 1);
}

#[test]
fn explain_shows_how_the_login_was_made_and_whether_a_route_needs_a_step_up() {
    let config = "[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n\n\
                  [[route]]\nname = \"payroll\"\npath_prefix = \"/payroll\"\nupstream = \"http://127.0.0.1:1\"\n\
                  acr = [\"urn:mfa\"]\nmax_age = \"15m\"\n";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let weak = json!({"sub": "u1", "acr": "urn:pwd", "amr": ["pwd"], "auth_time": now - 60});
    let (code, out) = explain(config, &weak, &["--route", "payroll"]);
    assert_eq!(code, 0, "a step-up is not a refusal: {out}");
    assert!(out.contains("acr:      urn:pwd"), "{out}");
    assert!(out.contains("amr:      pwd"), "{out}");
    assert!(
        out.contains("route:    asks acr one of urn:mfa, max_age 900 s: STEP-UP (the login's acr `urn:pwd` is not one of those asked for (`urn:mfa`))"),
        "{out}"
    );
    let strong = json!({"sub": "u1", "acr": "urn:mfa", "amr": ["pwd", "otp"], "auth_time": now - 60});
    let (_, out) = explain(config, &strong, &["--route", "payroll", "--json"]);
    let outcome: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(outcome["step_up"]["met"], true, "{out}");
    assert_eq!(outcome["identity"]["authentication"]["amr"], json!(["pwd", "otp"]));
    let (_, out) = explain(config, &strong, &["--route", "app", "--json"]);
    let outcome: Value = serde_json::from_str(&out).expect("one JSON object");
    assert!(outcome.get("step_up").is_none(), "a route that asks nothing: {out}");
}

#[tokio::test]
async fn a_distributed_groups_claim_is_fetched_with_the_access_token() {
    let upstream = crate::support::Upstream::start().await;
    let config = format!(
        "[server]\npublic_url = \"http://127.0.0.1:1\"\n[session]\nkeys = [\"{}\"]\n\
         [[provider]]\nname = \"x\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"c\"\n\
         [[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n",
        crate::scenario::SESSION_KEY
    );
    let config = doorward::config::parse_str(&config, "t.toml").expect("config");
    let tls = doorward::tls::client_config(None).expect("tls");
    let http = doorward::idp_http::IdpHttp::new(tls, std::time::Duration::from_secs(5));
    let provider = doorward::oidc::OidcProvider::new(
        config.providers[0].oidc().expect("an OIDC provider"),
        http,
        doorward::clock::Clock::system(),
    )
    .expect("provider");
    let endpoint = format!("{}/claims/groups", upstream.url());
    let groups = provider
        .fetch_distributed_claim(&endpoint, "the-access-token", "groups")
        .await
        .expect("fetched");
    assert_eq!(groups, json!(["from-source-a", "from-source-b"]));
    assert_eq!(upstream.last().header("authorization"), Some("Bearer the-access-token"));
    assert!(provider
        .fetch_distributed_claim(&format!("{}/status/404", upstream.url()), "t", "groups")
        .await
        .is_err());
}

#[tokio::test]
async fn tokens_reach_the_upstream_only_when_configured() {
    let s = Scenario::start(Options::default()).await;
    let mut browser = s.logged_in("alice", "/").await;
    browser
        .headers
        .push(("X-Forwarded-Access-Token".into(), "spoofed".into()));
    assert_eq!(browser.get(&s.url("/plain")).await.status, 200);
    let seen = s.upstream.last();
    assert!(
        seen.headers_folding_to("x-forwarded-access-token").is_empty(),
        "off by default, spoof stripped"
    );
    assert!(seen.headers_folding_to("x-forwarded-id-token").is_empty());

    let s = Scenario::start(Options {
        headers: "pass_access_token = true\npass_id_token = true\n".into(),
        ..Options::default()
    })
    .await;
    let mut browser = s.logged_in("alice", "/").await;
    browser
        .headers
        .push(("x_forwarded_access_token".into(), "spoofed".into()));
    assert_eq!(browser.get(&s.url("/with-tokens")).await.status, 200);
    let seen = s.upstream.last();
    let access = seen.headers_folding_to("x-forwarded-access-token");
    assert_eq!(access.len(), 1, "{access:?}");
    assert_ne!(access[0].1, "spoofed");
    assert!(seen
        .header("x-forwarded-id-token")
        .is_some_and(|t| t.starts_with("eyJ")));
}
