//! SCIM provisioning over HTTP, in the shapes Okta and Entra ID send
//! (/work/notes/scim.md §2), checked both in the SCIM answers and in what
//! the upstream sees for a logged-in user on her very next request: groups
//! gained and lost, roles from doorward's extension, and deactivation that
//! ends her session and refuses her next login.

use http::HeaderMap;
use serde_json::{json, Value};

use crate::idp::{raw_request, Browser};
use crate::scenario::{Options, Scenario};

pub const TOKEN: &str = "scim-test-token-0123456789abcdef0123456789";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const DOORWARD: &str = "urn:ietf:params:scim:schemas:extension:doorward:2.0:User";

/// `[identity] source` and an enabled `[scim]` with the test token.
pub fn scim_config(source: &str) -> String {
    format!("[identity]\nsource = \"{source}\"\n[scim]\nenabled = true\nbearer_token = \"{TOKEN}\"\n")
}

/// A SCIM answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An IdP's SCIM client.
#[derive(Clone)]
pub struct ScimClient {
    pub base: String,
    pub token: String,
}

impl ScimClient {
    /// The SCIM endpoints under doorward's internal prefix.
    pub fn of(base: &str) -> Self {
        Self {
            base: format!("{base}/_doorward/scim/v2"),
            token: TOKEN.into(),
        }
    }

    pub async fn send_with(&self, method: &str, path: &str, body: Option<&Value>, extra: &[(&str, &str)]) -> Answer {
        let url = url::Url::parse(&format!("{}{path}", self.base)).expect("url");
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("user-agent", "Okta SCIM Client 1.0.0"),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/scim+json; charset=utf-8"));
        }
        headers.extend_from_slice(extra);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let page = raw_request(method, &url, &headers, bytes.into()).await;
        if !page.body.is_empty() {
            assert_eq!(
                page.header("content-type"),
                Some("application/scim+json"),
                "{method} {path}: every answer is SCIM JSON"
            );
        }
        let body = if page.body.is_empty() { Value::Null } else { page.json() };
        Answer {
            status: page.status,
            headers: page.headers,
            body,
        }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.send_with(method, path, body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send("PUT", path, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, ops: Value) -> Answer {
        self.send("PATCH", path, Some(&json!({"schemas": [PATCH_OP], "Operations": ops})))
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None).await
    }

    /// Creates a user, returning its id.
    pub async fn create_user(&self, user_name: &str, extra: Value) -> String {
        let mut body = json!({"schemas": [USER], "userName": user_name, "active": true});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        let created = self.post("/Users", body).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["id"].as_str().expect("id").to_string()
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let created = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["id"].as_str().expect("id").to_string()
    }
}

/// `filter=...` for a query string.
pub fn filter(text: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("filter={encoded}")
}

/// What the upstream sees as `header` on alice's next request.
pub async fn next_request_header(s: &Scenario, browser: &mut Browser, base: &str, header: &str) -> Option<String> {
    let page = browser.get(&format!("{base}/next")).await;
    assert_eq!(page.status, 200, "the session still works: {}", page.body);
    s.upstream.last().header(header).map(str::to_string)
}

/// Whether a list header holds `item`.
pub fn has(list: &Option<String>, item: &str) -> bool {
    list.as_deref().is_some_and(|l| l.split(',').any(|i| i == item))
}

#[tokio::test]
async fn okta_provisioning_changes_a_logged_in_users_groups_roles_and_access() {
    let s = Scenario::start(Options {
        extra: scim_config("merged"),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);
    let mut alice = s.logged_in("alice", "/").await;
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert_eq!(groups.as_deref(), Some("engineers,staff"));

    // Okta's lookup before it creates: a miss is an empty list.
    let lookup = format!(
        "/Users?{}&startIndex=1&count=100",
        filter("userName eq \"alice@example.com\"")
    );
    let miss = scim.get(&lookup).await;
    assert_eq!((miss.status, miss.body["totalResults"].as_i64()), (200, Some(0)));
    assert_eq!(miss.body["startIndex"], 1);

    let okta_user = json!({
        "schemas": [USER], "userName": "alice@example.com",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"primary": true, "value": "alice@example.com", "type": "work"}],
        "displayName": "Alice Liddell", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": true
    });
    let created = scim.post("/Users", okta_user.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(created.body["meta"]["version"], "W/\"1\"");
    assert_eq!(
        created.header("location").map(str::to_string),
        created.body["meta"]["location"].as_str().map(str::to_string)
    );
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert!(created.body.get("password").is_none(), "passwords are never echoed");
    let again = scim.post("/Users", okta_user).await;
    assert_eq!(
        (again.status, again.body["scimType"].as_str()),
        (409, Some("uniqueness"))
    );
    assert_eq!(again.body["status"], "409");
    let hit = scim.get(&lookup).await;
    assert_eq!(hit.body["totalResults"], 1);
    assert_eq!(hit.body["Resources"][0]["id"], id.as_str());
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert_eq!(groups.as_deref(), Some("engineers,staff"), "no directory groups yet");

    // A pushed group, renamed with its id in the value, alice added.
    let group = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.body["id"].as_str().expect("id").to_string();
    let push = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "replace", "value": {"id": gid, "displayName": "okta-admins"}},
                {"op": "add", "path": "members", "value": [{"value": id, "display": "alice@example.com"}]},
            ]),
        )
        .await;
    assert_eq!(push.status, 204, "{}", push.body);
    assert_eq!(push.header("etag"), Some("W/\"2\""));
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert!(has(&groups, "okta-admins") && has(&groups, "engineers"), "{groups:?}");

    // Okta's update: GET, then PUT the whole resource back, with roles.
    let mut full = scim.get(&format!("/Users/{id}")).await.body;
    assert_eq!(full["groups"][0]["display"], "okta-admins");
    full[DOORWARD] = json!({"roles": ["app-admin"]});
    full["schemas"] = json!([USER, DOORWARD]);
    let put = scim.put(&format!("/Users/{id}"), full).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body[DOORWARD]["roles"], json!([{"value": "app-admin"}]));
    let roles = next_request_header(&s, &mut alice, &s.base, "x-forwarded-roles").await;
    assert!(has(&roles, "app-admin"), "{roles:?}");

    // Okta's membership push: remove and add in one PATCH.
    let bob = scim.create_user("bob@example.com", json!({})).await;
    let moved = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "replace", "value": {"id": gid, "displayName": "okta-admins"}},
                {"op": "remove", "path": format!("members[value eq \"{id}\"]")},
                {"op": "add", "path": "members", "value": [{"value": bob}]},
            ]),
        )
        .await;
    assert_eq!(moved.status, 204, "{}", moved.body);
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert_eq!(groups.as_deref(), Some("engineers,staff"), "the group is gone at once");

    // Deprovisioning is `active: false`: the session ends, logins are refused.
    let off = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!((off.status, &off.body["active"]), (200, &json!(false)));
    let page = alice.get(&s.url("/after-deactivation")).await;
    assert_eq!(page.status, 302, "her next request is a login redirect");
    let mut api = Browser {
        cookies: alice.cookies.clone(),
        headers: vec![("accept".into(), "application/json".into())],
    };
    assert_eq!(api.get(&s.url("/api")).await.status, 401);
    let refused = Browser::default().login(&s.url("/"), "alice", &s.idp).await;
    assert_eq!(
        refused.status, 403,
        "a deactivated user cannot log in: {}",
        refused.body
    );
    let still = scim.get(&format!("/Users/{id}")).await;
    assert_eq!((still.status, &still.body["active"]), (200, &json!(false)));

    let on = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!(on.status, 200);
    let mut back = s.logged_in("alice", "/").await;
    let roles = next_request_header(&s, &mut back, &s.base, "x-forwarded-roles").await;
    assert!(has(&roles, "app-admin"), "reactivated, with her roles: {roles:?}");

    // Import paging, in a stable order.
    for n in 0..3 {
        scim.create_user(&format!("user{n}@example.com"), json!({})).await;
    }
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let page = scim.get(&format!("/Users?startIndex={start}&count=2")).await;
        assert_eq!(page.body["totalResults"], 5);
        assert_eq!(page.body["startIndex"], start);
        for user in page.body["Resources"].as_array().into_iter().flatten() {
            seen.push(user["userName"].as_str().expect("userName").to_string());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "pages cover every user once: {seen:?}");
    let empty = scim.get("/Users?startIndex=6&count=2").await;
    assert_eq!(
        (empty.body["itemsPerPage"].as_i64(), empty.body["totalResults"].as_i64()),
        (Some(0), Some(5))
    );

    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await.status, 204);
    let gone = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!((gone.status, gone.body["status"].as_str()), (404, Some("404")));
}

#[tokio::test]
async fn entra_provisioning_with_directory_groups_only() {
    let s = Scenario::start(Options {
        extra: scim_config("scim"),
        ..Options::default()
    })
    .await;
    let scim = ScimClient::of(&s.base);

    // "Test Connection": a random userName, an empty list.
    let probe = scim
        .get(&format!(
            "/Users?{}",
            filter("userName eq \"7f0b6d0c-34a4-4a8f-8d1e-4b5e8f1f0a55\"")
        ))
        .await;
    assert_eq!((probe.status, &probe.body["totalResults"]), (200, &json!(0)));

    let entra_user = json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "alice@example.com", "active": true,
        "emails": [{"primary": true, "type": "work", "value": "alice@example.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [], "addresses": null, "title": null,
        ENTERPRISE: {"employeeNumber": "100009", "department": "Research"}
    });
    let created = scim.post("/Users", entra_user).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.body[ENTERPRISE]["department"], "Research");
    assert!(created.body.get("title").is_none() && created.body.get("roles").is_none());
    let by_ext = scim
        .get(&format!(
            "/Users?{}",
            filter("externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"")
        ))
        .await;
    assert_eq!(by_ext.body["Resources"][0]["id"], id.as_str());
    let by_email = scim
        .get(&format!(
            "/Users?{}",
            filter("emails[type eq \"work\"].value eq \"ALICE@example.com\"")
        ))
        .await;
    assert_eq!(by_email.body["totalResults"], 1);

    let mut alice = s.logged_in("alice", "/").await;
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert!(
        groups.as_deref().is_none_or(str::is_empty),
        "source = scim: no claim groups: {groups:?}"
    );

    // One Replace per path, then the flagged path-less form.
    let per_path = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@example.com"},
                {"op": "Replace", "path": "name.familyName", "value": "Liddell"},
                {"op": "Add", "path": "nickName", "value": "Al"},
            ]),
        )
        .await;
    assert_eq!(per_path.status, 200, "{}", per_path.body);
    assert_eq!(per_path.body["name"]["familyName"], "Liddell");
    let flagged = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"displayName": "Alice L", "name.givenName": "Alice",
                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42"}}]),
        )
        .await;
    assert_eq!(flagged.body["name"]["givenName"], "Alice");
    assert_eq!(flagged.body[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(flagged.header("etag"), Some("W/\"3\""));

    // Groups: created with Microsoft's extra schema URL, looked up without members.
    let group = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                   "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "entra-team",
                   "meta": {"resourceType": "Group"}}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.body["id"].as_str().expect("id").to_string();
    let found = scim
        .get(&format!(
            "/Groups?excludedAttributes=members&{}",
            filter("displayName eq \"entra-team\"")
        ))
        .await;
    assert_eq!(found.body["Resources"][0]["id"], gid.as_str());
    let add = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]),
        )
        .await;
    assert_eq!(add.status, 204, "{}", add.body);
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert_eq!(groups.as_deref(), Some("entra-team"));
    let listed = scim.get(&format!("/Groups/{gid}?attributes=members.display")).await;
    assert_eq!(listed.body["members"][0]["display"], "alice@example.com");
    let remove = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}]),
        )
        .await;
    assert_eq!(remove.status, 204);
    let groups = next_request_header(&s, &mut alice, &s.base, "x-forwarded-groups").await;
    assert!(groups.as_deref().is_none_or(str::is_empty), "{groups:?}");
    scim.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "Add", "path": "members", "value": [{"value": id}]}]),
    )
    .await;
    let flagged_remove = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
        )
        .await;
    assert_eq!(flagged_remove.status, 204);
    let members = scim.get(&format!("/Groups/{gid}")).await;
    assert!(members.body.get("members").is_none(), "{}", members.body);

    // Disable, as a string "False" (no aadOptscim062020 flag).
    let off = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!((off.status, &off.body["active"]), (200, &json!(false)));
    assert_eq!(alice.get(&s.url("/after")).await.status, 302);
    let refused = Browser::default().login(&s.url("/"), "alice", &s.idp).await;
    assert_eq!(refused.status, 403);
    let soft_deleted = scim
        .get(&format!("/Users?{}", filter("userName eq \"alice@example.com\"")))
        .await;
    assert_eq!(
        soft_deleted.body["Resources"][0]["active"], false,
        "still found while soft-deleted"
    );
    let on = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(on.status, 200);
    let mut alice = s.logged_in("alice", "/").await;

    // The hard delete, 30 days later: the session ends.
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(alice.get(&s.url("/after-delete")).await.status, 302);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).await.status, 204);
}
