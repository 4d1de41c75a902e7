//! The audit trail end to end: the real `doorward serve` binary writing
//! its trail to a file while real facts happen (a login at the real OP, a
//! failed one, a refusal, a refused bearer token, a SCIM write, a logout,
//! an operator's revocation with the CLI on the same store, a reload and a
//! refused one, a weakening switch). Each kind appears with its fields in
//! ECS, and no secret of the run appears anywhere in the trail.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::child::ChildDoorward;
use crate::faults_store::Relay;
use crate::idp::{Browser, Form, Idp};
use crate::scenario::SESSION_KEY;
use crate::support::{write_config, Upstream};

const SCIM_TOKEN: &str = "audit-scim-token-0123456789abcdef";

fn config(base: &str, issuer: &str, upstream: &str, dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{base}"
insecure_decode_escaped_slashes = true
[log]
format = "json"
level = "info"
[audit]
destination = "{dir}/audit.log"
[store]
url = "sqlite://{dir}/doorward.db"
[session]
keys = ["{SESSION_KEY}"]
[scim]
enabled = true
bearer_token = "{SCIM_TOKEN}"
[[provider]]
name = "test-idp"
kind = "oidc"
issuer = "{issuer}"
client_id = "doorward"
client_secret = "{secret}"
scopes = ["openid", "email", "profile", "groups"]
bearer_audiences = ["dw-api"]
[[route]]
name = "admin"
path_prefix = "/admin"
upstream = "{upstream}"
require_groups = ["admins"]
[[route]]
name = "api"
path_prefix = "/api"
upstream = "{upstream}"
bearer = true
[[route]]
name = "app"
upstream = "{upstream}"
{extra}
"#,
        dir = dir.display(),
        secret = crate::idp::CLIENT_SECRET,
    )
}

/// The trail's events so far, as JSON documents.
fn trail(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}")))
        .collect()
}

/// The first event named `action` once it is written (a deadline, no sleep
/// guessing how long a write takes).
async fn event(dir: &std::path::Path, action: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = trail(dir).into_iter().find(|e| e["event"]["action"] == action) {
            return found;
        }
        assert!(Instant::now() < deadline, "no {action} event in {:#?}", trail(dir));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_security_fact_is_one_ecs_event_in_the_trail_and_no_secret_is() {
    let relay = Relay::start().await;
    let clients = json!([Idp::doorward_client(
        &relay.base,
        &format!("{}/_doorward/backchannel-logout", relay.base)
    )]);
    let idp = Idp::start(&clients, &Idp::accounts(), &[]);
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let text = config(&relay.base, &idp.issuer, &upstream.url(), dir.path(), "");
    let file = write_config(&text);
    let doorward = ChildDoorward::serve(file.path());
    relay.point_at(doorward.addr);

    // A weakening switch is in force from the start.
    let weakened = event(dir.path(), "weakened").await;
    assert_eq!(weakened["doorward"]["key"], "server.insecure_decode_escaped_slashes");
    assert_eq!(weakened["event"]["category"], json!(["configuration"]));

    // A login at the real OP.
    let mut alice = Browser::default();
    let page = alice.login(&format!("{}/home", relay.base), "alice", &idp).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let login = event(dir.path(), "login-succeeded").await;
    assert_eq!(login["event"]["outcome"], "success");
    assert_eq!(login["event"]["category"], json!(["authentication", "session"]));
    assert_eq!(login["user"]["name"], "alice@example.com");
    assert_eq!(login["user"]["id"], "alice");
    assert_eq!(login["doorward"]["provider"], "test-idp");
    let session = login["doorward"]["session"]
        .as_str()
        .expect("the session's key")
        .to_string();
    assert_eq!(session.len(), 24, "a hash of the store key, not the key or the cookie");
    assert!(login["http"]["request"]["id"].is_string(), "{login}");
    assert!(login["event"]["id"].is_string());

    // A login that cannot finish.
    let failed = Browser::default()
        .get(&format!(
            "{}/_doorward/callback?code=x&state=forged-state-0123",
            relay.base
        ))
        .await;
    assert_eq!(failed.status, 401);
    let failure = event(dir.path(), "login-failed").await;
    assert_eq!(failure["event"]["outcome"], "failure");
    assert!(
        failure["event"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("login cookie")),
        "{failure}"
    );

    // The rules refuse alice on the admins' route.
    assert_eq!(alice.get(&format!("{}/admin/panel", relay.base)).await.status, 403);
    let denied = event(dir.path(), "access-denied").await;
    assert_eq!(denied["event"]["outcome"], "failure");
    assert_eq!(denied["doorward"]["route"], "admin");
    assert_eq!(denied["doorward"]["rule"], "required_grant");
    assert_eq!(denied["user"]["name"], "alice@example.com");

    // A bearer token that is not one.
    let mut api = Browser {
        headers: vec![("authorization".into(), "Bearer not-a-real-token-0123456789".into())],
        ..Browser::default()
    };
    assert_eq!(api.get(&format!("{}/api/items", relay.base)).await.status, 401);
    let refused = event(dir.path(), "bearer-refused").await;
    assert_eq!(refused["event"]["reason"], "not a JWT with an issuer");
    assert_eq!(refused["event"]["outcome"], "failure");

    // A SCIM write.
    let page = crate::idp::raw_request(
        "POST",
        &url::Url::parse(&format!("{}/_doorward/scim/v2/Users", relay.base)).expect("url"),
        &[
            ("authorization", &format!("Bearer {SCIM_TOKEN}")),
            ("content-type", "application/scim+json"),
        ],
        bytes::Bytes::from(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol@example.com"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let change = event(dir.path(), "scim-change").await;
    assert_eq!(change["doorward"]["credential"], "bearer_token");
    assert_eq!(change["doorward"]["resource_type"], "User");
    assert_eq!(change["doorward"]["operation"], "create");
    assert!(change["doorward"]["resource_id"].is_string(), "{change}");
    assert_eq!(change["doorward"]["fields"], json!(["userName"]), "the names it wrote");

    // alice logs out.
    let page = alice.get(&format!("{}/_doorward/logout", relay.base)).await;
    let form = Form::parse(&page.body).expect("the sign-out form");
    let action = url::Url::parse(&relay.base)
        .expect("base")
        .join(&form.action)
        .expect("action");
    let out = alice.request("POST", &action, Some(&form.inputs)).await;
    assert!((300..400).contains(&out.status), "{}", out.status);
    let logout = event(dir.path(), "logout").await;
    assert_eq!(logout["doorward"]["by"], "logout");
    assert_eq!(logout["doorward"]["session"], session.as_str());
    assert_eq!(logout["user"]["name"], "alice@example.com");

    // An operator ends bob's session with the CLI on the same store.
    let mut bob = Browser::default();
    assert_eq!(
        bob.login(&format!("{}/home", relay.base), "bob", &idp).await.status,
        200
    );
    let (ok, _, err) = crate::operators::cli(&text, &["revoke", "--user", "bob@example.com"]).await;
    assert!(ok, "{err}");
    let ended = event(dir.path(), "session-ended").await;
    assert_eq!(ended["doorward"]["by"], "operator");
    assert_eq!(ended["doorward"]["count"], 1);

    // A reload, then one the checks refuse.
    std::fs::write(
        file.path(),
        config(
            &relay.base,
            &idp.issuer,
            &upstream.url(),
            dir.path(),
            "public = [\"/public/\"]",
        ),
    )
    .expect("edit");
    doorward.signal("HUP");
    let reloaded = event(dir.path(), "config-reloaded").await;
    assert_eq!(reloaded["event"]["outcome"], "success");
    std::fs::write(
        file.path(),
        format!("{text}\n[[route]]\nname = \"app\"\nupstream = \"nowhere\"\n"),
    )
    .expect("edit");
    doorward.signal("HUP");
    let refused = event(dir.path(), "config-refused").await;
    assert_eq!(refused["event"]["outcome"], "failure");

    // Nothing secret anywhere in the trail.
    let whole = std::fs::read_to_string(dir.path().join("audit.log")).expect("trail");
    let cookie = alice.cookie("doorward").map(|c| c.value.clone());
    for (what, secret) in [
        ("client secret", Some(crate::idp::CLIENT_SECRET.to_string())),
        ("SCIM token", Some(SCIM_TOKEN.to_string())),
        ("session key", Some(SESSION_KEY.to_string())),
        ("bearer token", Some("not-a-real-token-0123456789".to_string())),
        ("bob's cookie", bob.cookie("doorward").map(|c| c.value.clone())),
        ("alice's cookie", cookie),
    ] {
        if let Some(secret) = secret.filter(|s| s.len() >= 8) {
            assert!(!whole.contains(&secret), "the {what} is in the audit trail");
        }
    }
}
