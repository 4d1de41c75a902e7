//! Auth metrics over the real login flow: a login, a denial, a failed
//! login, refreshes, accepted and refused back-channel logouts and bearer
//! validations each move their own series in `/_doorward/metrics`, and so
//! do session cache lookups, store operations and IdP requests; the
//! session cache's size is reported.

use serde_json::json;

use crate::idp::Browser;
use crate::scenario::{api_call, api_client_tokens, Options, Scenario};

/// The value of one series (name with its labels), 0 when absent.
async fn metric(s: &Scenario, series: &str) -> f64 {
    let page = Browser::default().get(&s.url("/_doorward/metrics")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

#[tokio::test]
async fn logins_denials_failures_and_bearer_tokens_move_their_series() {
    let s = Scenario::start(Options {
        extra: "\n[identity.login]\nallowed_email_domains = [\"example.com\"]\n".into(),
        route: "bearer = true".into(),
        ..Options::default()
    })
    .await;
    let success = r#"doorward_logins_total{provider="test-idp",outcome="success"}"#;
    let denied = r#"doorward_logins_total{provider="test-idp",outcome="denied"}"#;
    assert_eq!(metric(&s, success).await, 0.0);

    let _alice = s.logged_in("alice", "/").await;
    assert_eq!(metric(&s, success).await, 1.0);
    assert_eq!(metric(&s, denied).await, 0.0);
    assert!(
        metric(&s, "doorward_sessions_cached").await >= 1.0,
        "alice's session is cached"
    );

    s.idp
        .set_account(
            "eve",
            &json!({"email": "eve@elsewhere.test", "email_verified": true, "preferred_username": "eve"}),
        )
        .await;
    let page = Browser::default().login(&s.url("/"), "eve", &s.idp).await;
    assert_eq!(page.status, 403);
    assert_eq!(metric(&s, denied).await, 1.0);
    assert_eq!(metric(&s, success).await, 1.0, "a denial is not a success");

    // A callback no login of this browser started cannot name a provider.
    let page = Browser::default()
        .get(&s.url("/_doorward/callback?code=x&state=forged"))
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(
        metric(&s, r#"doorward_logins_total{provider="-",outcome="failed"}"#).await,
        1.0
    );

    let token = api_client_tokens(&s.idp, "alice").await["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    assert_eq!(api_call(&s, "/api", &token).await.status, 200);
    assert_eq!(api_call(&s, "/api/again", &token).await.status, 200);
    assert_eq!(
        metric(&s, r#"doorward_bearer_validations_total{outcome="valid"}"#).await,
        1.0,
        "the second call is answered from the cache"
    );
    assert_eq!(api_call(&s, "/api", "not.a.jwt").await.status, 401);
    assert_eq!(
        metric(&s, r#"doorward_bearer_validations_total{outcome="invalid"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn refreshes_and_back_channel_logouts_move_their_series() {
    let s = Scenario::start(Options {
        // Every request is "close to expiry": each one refreshes.
        session: "refresh_before = \"1h\"".into(),
        ..Options::default()
    })
    .await;
    let mut browser = s.logged_in("alice", "/").await;
    assert_eq!(browser.get(&s.url("/next")).await.status, 200);
    assert!(metric(&s, r#"doorward_refreshes_total{outcome="success"}"#).await >= 1.0);
    assert_eq!(metric(&s, r#"doorward_refreshes_total{outcome="ended"}"#).await, 0.0);

    s.idp.delete_account("alice").await;
    assert_eq!(browser.get(&s.url("/after-delete")).await.status, 302);
    assert_eq!(metric(&s, r#"doorward_refreshes_total{outcome="ended"}"#).await, 1.0);

    let endpoint = url::Url::parse(&s.url("/_doorward/backchannel-logout")).expect("url");
    let page = crate::idp::raw_request(
        "POST",
        &endpoint,
        &[("content-type", "application/x-www-form-urlencoded")],
        "logout_token=forged".into(),
    )
    .await;
    assert_eq!(page.status, 400);
    assert_eq!(
        metric(&s, r#"doorward_backchannel_logouts_total{outcome="refused"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn an_accepted_back_channel_logout_moves_its_series() {
    // The IdP's back-channel call goes to a recorder, so the test hands the
    // real logout token to doorward itself and sees the answer.
    let recorder = crate::support::Upstream::start().await;
    let s = Scenario::start(Options {
        backchannel: Some(format!("{}/relay", recorder.url())),
        ..Options::default()
    })
    .await;
    let accepted = r#"doorward_backchannel_logouts_total{outcome="accepted"}"#;
    let mut alice = s.logged_in("alice", "/").await;
    assert_eq!(metric(&s, accepted).await, 0.0);

    let page = alice.navigate(&format!("{}/session/end", s.idp.issuer)).await;
    let done = alice.submit(&page, "alice", &[("logout", "yes")]).await;
    assert!(done.status < 500, "{}", done.body);
    let delivered = recorder
        .requests()
        .into_iter()
        .find(|r| r.target == "/relay")
        .expect("the IdP sent a back-channel logout");
    let endpoint = url::Url::parse(&s.url("/_doorward/backchannel-logout")).expect("url");
    let page = crate::idp::raw_request(
        "POST",
        &endpoint,
        &[("content-type", "application/x-www-form-urlencoded")],
        delivered.body.into(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(metric(&s, accepted).await, 1.0);
    assert_eq!(
        metric(&s, r#"doorward_backchannel_logouts_total{outcome="refused"}"#).await,
        0.0
    );
    assert_eq!(alice.get(&s.url("/private")).await.status, 302, "the session ended");
}

#[tokio::test]
async fn session_cache_store_and_idp_requests_move_their_series() {
    let s = Scenario::start(Options::default()).await;
    let hits = r#"doorward_session_cache_lookups_total{result="hit"}"#;
    let token = r#"doorward_idp_request_duration_seconds_count{provider="test-idp",endpoint="token"}"#;
    let insert = r#"doorward_store_operation_duration_seconds_count{operation="insert"}"#;
    assert_eq!(metric(&s, token).await, 0.0);
    assert_eq!(metric(&s, insert).await, 0.0);

    let mut alice = s.logged_in("alice", "/").await;
    assert!(metric(&s, token).await >= 1.0, "the code exchange");
    for endpoint in ["discovery", "jwks"] {
        let series =
            format!(r#"doorward_idp_request_duration_seconds_count{{provider="test-idp",endpoint="{endpoint}"}}"#);
        assert!(metric(&s, &series).await >= 1.0, "{series}");
    }
    assert_eq!(metric(&s, insert).await, 1.0, "one session written");
    assert_eq!(
        metric(
            &s,
            r#"doorward_idp_request_errors_total{provider="test-idp",endpoint="token"}"#
        )
        .await,
        0.0
    );

    let before = metric(&s, hits).await;
    assert_eq!(alice.get(&s.url("/again")).await.status, 200);
    assert_eq!(metric(&s, hits).await, before + 1.0, "the session came from the cache");

    // (A miss, a lookup that reads the store, is in tests/e2e/reload.rs: a
    // reload drops the cache.)
}

/// Every series the Grafana dashboard queries is one doorward exports.
#[test]
fn the_grafana_dashboard_uses_only_exported_series() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/doorward.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read dashboard")).expect("JSON");
    let exported = doorward::metrics::Metrics::new().encode();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut used = std::collections::BTreeSet::new();
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().expect("expr");
        for (i, _) in expr.match_indices("doorward_") {
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    for auth in [
        "logins",
        "refreshes",
        "backchannel_logouts",
        "bearer_validations",
        "sessions_cached",
    ] {
        assert!(used.iter().any(|u| u.contains(auth)), "the dashboard shows {auth}");
    }
    for name in &used {
        let base = name.trim_end_matches("_total").trim_end_matches("_bucket");
        assert!(
            exported.contains(&format!("# TYPE {base} ")),
            "{name} is not exported:\n{exported}"
        );
    }
}
