//! The SCIM server as an operator meets it: every refusal over HTTP with
//! its status and `scimType`, credentials and their rate limit, a listener
//! of its own, a directory that survives a restart, concurrent member
//! additions, and two replicas on PostgreSQL following a provisioning on
//! the very next request.

use serde_json::json;
use tokio::net::TcpListener;

use crate::idp::Browser;
use crate::postgres::TestPostgres;
use crate::replicas::Pair;
use crate::scenario::{Options, Scenario};
use crate::scim::{filter, has, next_request_header, scim_config, ScimClient, DOORWARD, GROUP, USER};
use crate::support::Proxy;

#[tokio::test]
async fn scim_is_not_there_unless_enabled() {
    let s = Scenario::start(Options::default()).await;
    let page = Browser::default()
        .get(&s.url("/_doorward/scim/v2/ServiceProviderConfig"))
        .await;
    assert_eq!(page.status, 404);
}

#[tokio::test]
async fn discovery_describes_what_the_server_does() {
    let s = Scenario::start(Options {
        extra: scim_config("merged"),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);
    let config = scim.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["bulk"]["supported"], false);
    assert_eq!(config.body["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        scim.send("POST", "/ServiceProviderConfig", Some(&json!({})))
            .await
            .status,
        405
    );
    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    let user = scim.get("/ResourceTypes/User").await;
    assert_eq!(user.body["schemaExtensions"][1]["schema"], DOORWARD);
    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 4);
    assert_eq!(
        scim.get(&format!("/Schemas/{DOORWARD}")).await.body["attributes"][0]["name"],
        "roles"
    );
    assert_eq!(scim.get("/Schemas/urn:nope").await.status, 404);
    let bulk = scim.post("/Bulk", json!({})).await;
    assert_eq!((bulk.status, bulk.body["status"].as_str()), (501, Some("501")));
    let random = scim.get("/f58b1134-eaf8-4606-bba1-0302dcd80839").await;
    assert_eq!((random.status, random.body["status"].as_str()), (404, Some("404")));
}

#[tokio::test]
async fn refusals_carry_their_status_and_scim_type() {
    let s = Scenario::start(Options {
        extra: format!("{}max_body = \"4KiB\"\n", scim_config("merged")),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);
    let id = scim
        .create_user(
            "carol@example.com",
            json!({"emails": [{"value": "c@x.test", "type": "work"}]}),
        )
        .await;
    let bad = |status: u16, scim_type: &'static str| {
        move |a: crate::scim::Answer| {
            assert_eq!(
                (a.status, a.body["scimType"].as_str(), a.body["status"].as_str()),
                (status, Some(scim_type), Some(status.to_string().as_str())),
                "{}",
                a.body
            );
        }
    };
    bad(400, "invalidFilter")(scim.get(&format!("/Users?{}", filter("userName eq"))).await);
    bad(400, "invalidFilter")(scim.get(&format!("/Users?{}", filter("active eq \"true\""))).await);
    bad(400, "invalidValue")(scim.post("/Users", json!({"schemas": [USER]})).await);
    bad(400, "invalidSyntax")(scim.post("/Users", json!({"userName": "x"})).await);
    let user = format!("/Users/{id}");
    bad(400, "invalidPath")(
        scim.patch(&user, json!([{"op": "replace", "path": "nope", "value": 1}]))
            .await,
    );
    bad(400, "invalidFilter")(
        scim.patch(
            &user,
            json!([{"op": "replace", "path": "emails[type eq].value", "value": "x"}]),
        )
        .await,
    );
    bad(400, "noTarget")(scim.patch(&user, json!([{"op": "remove"}])).await);
    bad(400, "mutability")(
        scim.patch(&user, json!([{"op": "replace", "path": "id", "value": "x"}]))
            .await,
    );
    bad(400, "invalidValue")(
        scim.post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "ghost"}]}),
        )
        .await,
    );
    assert_eq!(
        scim.get("/Groups").await.body["totalResults"],
        0,
        "nothing partial is stored"
    );
    let missing = scim.get("/Users/0123456789abcdef").await;
    assert_eq!((missing.status, missing.body["status"].as_str()), (404, Some("404")));

    // ETags: 412 on a stale If-Match, 304 on a current If-None-Match.
    let current = scim.get(&user).await;
    let etag = current.header("etag").expect("etag").to_string();
    let body = json!({"schemas": [USER], "userName": "carol@example.com", "title": "CTO"});
    let stale = scim
        .send_with("PUT", &user, Some(&body), &[("if-match", "W/\"99\"")])
        .await;
    assert_eq!((stale.status, stale.body["status"].as_str()), (412, Some("412")));
    let fresh = scim.send_with("PUT", &user, Some(&body), &[("if-match", &etag)]).await;
    assert_eq!((fresh.status, fresh.header("etag")), (200, Some("W/\"2\"")));
    assert_eq!(
        scim.send_with("DELETE", &user, None, &[("if-match", &etag)])
            .await
            .status,
        412
    );
    assert_eq!(
        scim.send_with("GET", &user, None, &[("if-none-match", "W/\"2\"")])
            .await
            .status,
        304
    );

    // Bodies: bounded, and JSON only.
    let huge = json!({"schemas": [USER], "userName": "h", "title": "x".repeat(8192)});
    assert_eq!(scim.post("/Users", huge).await.status, 413);
    let url = url::Url::parse(&format!("{}/Users", scim.base)).expect("url");
    let auth = format!("Bearer {}", scim.token);
    let form = crate::idp::raw_request(
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "userName=x".into(),
    )
    .await;
    assert_eq!(form.status, 415);

    // Searching, and count=0.
    let search = scim
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "userName sw \"CAROL\"", "attributes": ["userName"]}),
        )
        .await;
    assert_eq!(search.status, 200, "{}", search.body);
    assert_eq!(
        search.body["Resources"][0],
        json!({"schemas": [USER], "id": id, "userName": "carol@example.com"})
    );
    let everything = scim
        .post(
            "/.search",
            json!({"attributes": ["displayName", "userName"], "count": 10}),
        )
        .await;
    assert_eq!(
        everything.body["totalResults"], 1,
        "one user, no groups: {}",
        everything.body
    );
    let counted = scim.get("/Users?count=0").await;
    assert_eq!(
        (&counted.body["totalResults"], &counted.body["itemsPerPage"]),
        (&json!(1), &json!(0))
    );

    // Credentials last: they lock this address out for a minute.
    let mut wrong = scim.clone();
    wrong.token = "wrong-token".into();
    let denied = wrong.get("/Users").await;
    assert_eq!((denied.status, denied.body["status"].as_str()), (401, Some("401")));
    assert_eq!(
        denied.header("www-authenticate"),
        Some("Bearer realm=\"doorward-scim\"")
    );
    let mut anonymous = Browser::default();
    assert_eq!(anonymous.get(&format!("{}/Users", scim.base)).await.status, 401);
    let mut limited = None;
    for _ in 0..12 {
        let answer = wrong.get("/Users").await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 401);
    }
    let limited = limited.expect("429 after repeated failures");
    assert!(limited
        .header("retry-after")
        .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n > 0)));
    assert_eq!(scim.get("/Users").await.status, 429, "even the right token waits");
}

#[tokio::test]
async fn scim_can_have_a_listener_of_its_own() {
    let s = Scenario::start(Options {
        extra: format!("{}listen = \"127.0.0.1:0\"\n", scim_config("merged")),
        ..Options::default()
    })
    .await;
    let main = Browser::default().get(&s.url("/_doorward/scim/v2/Users")).await;
    assert_eq!(main.status, 404, "not on the main listener");
    let addr = s._proxy.scim_addr.expect("a SCIM listener");
    let scim = ScimClient {
        base: format!("http://{addr}/scim/v2"),
        token: crate::scim::TOKEN.into(),
    };
    let created = scim
        .post("/Users", json!({"schemas": [USER], "userName": "dave@example.com"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let location = created.header("location").expect("location");
    assert!(
        location.starts_with(&format!("http://{addr}/scim/v2/Users/")),
        "{location}"
    );
    let app = Browser::default().get(&format!("http://{addr}/dashboard")).await;
    assert_eq!(app.status, 404, "the SCIM listener proxies nothing");
    assert_eq!(
        Browser::default()
            .get(&format!("http://{addr}/_doorward/healthz"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_directory_survives_a_restart() {
    let mut s = Scenario::start(Options {
        extra: scim_config("merged"),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);
    let id = scim
        .create_user(
            "erin@example.com",
            json!({"schemas": [USER, DOORWARD], DOORWARD: {"roles": ["ops"]}}),
        )
        .await;
    let gid = scim.create_group("night-shift", &[&id]).await;
    s._proxy.shutdown().await.expect("drained");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = Proxy::start_on(&s.config, listener).await;
    let scim = ScimClient::of(&format!("http://{}", second.addr));
    let user = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.body[DOORWARD]["roles"], json!([{"value": "ops"}]));
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(group.body["members"][0]["value"], id.as_str());
    assert_eq!(group.header("etag"), Some("W/\"1\""));
}

#[tokio::test]
async fn twenty_concurrent_patches_adding_members_lose_none() {
    let s = Scenario::start(Options {
        extra: scim_config("merged"),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);
    let gid = scim.create_group("crowd", &[]).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(scim.create_user(&format!("u{n}@example.com"), json!({})).await);
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let scim = scim.clone();
            let path = format!("/Groups/{gid}");
            let ops = json!([{"op": "add", "path": "members", "value": [{"value": id}]}]);
            tokio::spawn(async move { scim.patch(&path, ops).await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), 204);
    }
    let group = scim.get(&format!("/Groups/{gid}")).await;
    let mut members: Vec<String> = group.body["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
        .collect();
    members.sort();
    ids.sort();
    assert_eq!(members, ids);
    assert_eq!(group.header("etag"), Some("W/\"21\""), "each PATCH is one version");
}

#[tokio::test]
async fn two_replicas_follow_provisioning_on_the_very_next_request() {
    let pg = TestPostgres::shared();
    let pair = Pair::start(
        pg,
        Options {
            extra: scim_config("merged"),
            ..Options::default()
        },
    )
    .await;
    let s = &pair.s;
    let b_base = format!("http://{}", pair.b.addr);
    let mut alice = s.logged_in("alice", "/").await;
    // B has her session cached.
    for _ in 0..2 {
        let groups = next_request_header(s, &mut alice, &b_base, "x-forwarded-groups").await;
        assert_eq!(groups.as_deref(), Some("engineers,staff"));
    }
    // Provisioned through A.
    let scim = ScimClient::of(&s.base);
    let id = scim
        .create_user(
            "alice@example.com",
            json!({"schemas": [USER, DOORWARD], DOORWARD: {"roles": ["replica-admin"]}}),
        )
        .await;
    let roles = next_request_header(s, &mut alice, &b_base, "x-forwarded-roles").await;
    assert_eq!(roles.as_deref(), Some("replica-admin"));
    let gid = scim.create_group("pg-team", &[&id]).await;
    let groups = next_request_header(s, &mut alice, &b_base, "x-forwarded-groups").await;
    assert!(has(&groups, "pg-team") && has(&groups, "engineers"), "{groups:?}");
    let removed = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
        )
        .await;
    assert_eq!(removed.status, 204);
    let groups = next_request_header(s, &mut alice, &b_base, "x-forwarded-groups").await;
    assert_eq!(groups.as_deref(), Some("engineers,staff"));
    // B answers lookups from the same directory.
    let on_b = ScimClient::of(&b_base);
    let found = on_b
        .get(&format!("/Users?{}", filter("userName eq \"alice@example.com\"")))
        .await;
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    // Deactivated through A: B refuses her next request and her next login.
    let off = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(alice.get(&format!("{b_base}/after")).await.status, 302);
    let refused = Browser::default().login(&s.url("/"), "alice", &s.idp).await;
    assert_eq!(refused.status, 403);
}
