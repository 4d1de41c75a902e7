//! The SCIM server in process, without sockets: built over a SQLite store
//! in a temp dir, its changes going to a notifier that records them (and
//! fails when told to), as `auth`'s would end or refresh sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::directory::{DirectoryChange, DirectoryHandle, DirectoryNotifier, NotifyError, NotifyFuture};
use crate::respond::ResponseBody;
use crate::scim::{Peer, Scim, GROUP_URN, USER_URN};
use crate::store::{Store, StoreOptions};

const TOKEN: &str = "in-process-scim-bearer-token-0123456789";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Records every change it is told of; fails while `failing` is set.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<DirectoryChange>>,
    failing: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("the recorder was told to fail")]
struct Refused;

impl DirectoryNotifier for Recorder {
    fn apply<'a>(&'a self, changes: &'a [DirectoryChange]) -> NotifyFuture<'a> {
        let failing = self.failing.load(Ordering::SeqCst);
        if !failing {
            self.seen.lock().expect("recorder lock").extend_from_slice(changes);
        }
        Box::pin(async move {
            match failing {
                true => Err(NotifyError::new(Refused)),
                false => Ok(()),
            }
        })
    }

    fn sessions_revoked<'a>(&'a self, _keys: &'a [crate::store::SessionKey]) -> NotifyFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn sessions_changed<'a>(&'a self, _keys: &'a [crate::store::SessionKey]) -> NotifyFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn accounts_changed(&self) -> NotifyFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

impl Recorder {
    fn take(&self) -> Vec<DirectoryChange> {
        std::mem::take(&mut *self.seen.lock().expect("recorder lock"))
    }
}

struct Server {
    scim: Scim,
    notes: Arc<Recorder>,
    store: Store,
    _dir: tempfile::TempDir,
}

/// An answer: status, `ETag`, `Location`, and the body as JSON.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Value,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/directory.db", dir.path().display());
    let store = Store::open(&url, &StoreOptions::default()).await.expect("store");
    let notes = Arc::new(Recorder::default());
    let handle = DirectoryHandle::new(store.clone(), Clock::manual(1_700_000_000), notes.clone());
    let config = format!(
        r#"
[server]
public_url = "https://dw.test"
[session]
keys = ["0123456789abcdef0123456789abcdef-scim-in-process"]
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"
[[route]]
name = "app"
upstream = "http://127.0.0.1:1"
[scim]
enabled = true
bearer_token = "{TOKEN}"
"#
    );
    let config = crate::config::parse_str(&config, "scim.toml").expect("config");
    let scim = Scim::from_config(&config, Some(handle))
        .expect("scim setup")
        .expect("scim is on");
    Server {
        scim,
        notes,
        store,
        _dir: dir,
    }
}

impl Server {
    /// `target` is the path after the base path, with any query.
    async fn call(&self, method: Method, target: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("https://dw.test/_doorward/scim/v2{target}"))
            .header("authorization", format!("Bearer {TOKEN}"));
        if body.is_some() {
            request = request.header("content-type", "application/scim+json");
        }
        let (parts, ()) = request.body(()).expect("request").into_parts();
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let peer = Peer {
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
            origin: None,
        };
        let rest = target.split('?').next().unwrap_or_default();
        let reply = self
            .scim
            .handle(&parts, http_body_util::Full::new(bytes), rest, &peer)
            .await;
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let body = match reply.body() {
            ResponseBody::Full(Some(bytes)) if !bytes.is_empty() => serde_json::from_slice(bytes).expect("json body"),
            _ => Value::Null,
        };
        Answer {
            status: reply.status(),
            location: header("location"),
            body,
        }
    }

    async fn create_user(&self, name: &str) -> String {
        let body = json!({"schemas": [USER_URN], "userName": name, "externalId": format!("ext-{name}")});
        let answer = self.call(Method::POST, "/Users", Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_str().expect("id").to_string()
    }
}

fn user_change(name: &str) -> DirectoryChange {
    DirectoryChange::User {
        user_name: name.into(),
        external_id: Some(format!("ext-{name}")),
    }
}

#[tokio::test]
async fn a_created_user_is_stored_listed_and_reported() {
    let s = server().await;
    let body = json!({"schemas": [USER_URN], "userName": "alice", "externalId": "ext-alice"});
    let created = s.call(Method::POST, "/Users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id");
    assert_eq!(
        created.location.as_deref(),
        Some(format!("https://dw.test/_doorward/scim/v2/Users/{id}").as_str())
    );
    assert_eq!(s.notes.take(), [user_change("alice")]);

    let listed = s
        .call(Method::GET, "/Users?filter=userName%20eq%20%22ALICE%22", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["totalResults"], 1);
    assert_eq!(listed.body["Resources"][0]["id"], id);

    let taken = s
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_URN], "userName": "Alice"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.body["scimType"], "uniqueness");
    assert!(s.notes.take().is_empty(), "a refused write reports nothing");
}

#[tokio::test]
async fn a_deactivation_reaches_the_notifier_as_a_removal() {
    let s = server().await;
    let id = s.create_user("bob").await;
    s.notes.take();
    let off = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = s.call(Method::PATCH, &format!("/Users/{id}"), Some(off)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["active"], false);
    assert_eq!(
        s.notes.take(),
        [DirectoryChange::UserRemoved {
            user_name: "bob".into(),
            external_id: Some("ext-bob".into())
        }]
    );

    let deleted = s.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(
        matches!(s.notes.take().as_slice(), [DirectoryChange::UserRemoved { user_name, .. }] if user_name == "bob")
    );
    let gone = s.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn group_membership_changes_report_the_members() {
    let s = server().await;
    let carol = s.create_user("carol").await;
    let dave = s.create_user("dave").await;
    s.notes.take();
    let body = json!({"schemas": [GROUP_URN], "displayName": "Eng", "members": [{"value": carol}]});
    let created = s.call(Method::POST, "/Groups", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        s.notes.take(),
        [DirectoryChange::Members {
            user_ids: vec![carol.clone()]
        }]
    );

    let add =
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": dave}]}]});
    let patched = s.call(Method::PATCH, &format!("/Groups/{group}"), Some(add)).await;
    assert_eq!(
        patched.status,
        StatusCode::NO_CONTENT,
        "groups answer PATCH without a body"
    );
    assert_eq!(
        s.notes.take(),
        [DirectoryChange::Members {
            user_ids: vec![dave.clone()]
        }]
    );

    let read = s.call(Method::GET, &format!("/Groups/{group}"), None).await;
    let members: Vec<&str> = read.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(members, [carol.as_str(), dave.as_str()]);
}

#[tokio::test]
async fn a_notifier_failure_is_a_503_and_the_write_stays_stored() {
    let s = server().await;
    s.notes.failing.store(true, Ordering::SeqCst);
    let body = json!({"schemas": [USER_URN], "userName": "erin"});
    let answer = s.call(Method::POST, "/Users", Some(body)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["detail"], "the directory is unavailable; retry later");
    use crate::store::directory::DirectoryStore;
    let stored = s.store.find_user_by_name("erin").await.expect("store");
    assert!(stored.is_some(), "the IdP's retry finds the user and reports it again");
}
