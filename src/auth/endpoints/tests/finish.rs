//! Finishing a login decides before it writes: a login the directory's
//! facts refuse is refused without a session ever being stored, and one
//! they allow stores exactly one.

use crate::auth::endpoints::login::finish;
use crate::auth::AuthError;
use crate::store::directory::{key_for_user_name, DirGroup, DirUser, DirectoryStore, WriteOutcome};
use crate::store::SessionStore;

use super::harness::{login_result, TestAuth, CORP};

/// Groups come from the SCIM directory only; with none there, everyone is
/// `staff`, which may log in. A directory that says `contractors` takes
/// that away.
const DIRECTORY_DECIDES: &str = r#"
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"

[scim]
enabled = true
bearer_token = "in-process-scim-token-0123456789abcdef"

[identity]
source = "scim"
[identity.groups]
default = "staff"
[identity.login]
allowed_groups = ["staff"]
"#;

/// Puts `user_name` in the directory, member of `group`.
async fn provision(t: &TestAuth, user_name: &str, group: &str) {
    let store = t.auth.sessions.store();
    let now = t.clock.now();
    let user = DirUser {
        id: "user-1".into(),
        user_name: user_name.into(),
        external_id: None,
        active: true,
        resource: "{}".into(),
        version: 1,
        created: now,
        modified: now,
    };
    assert_eq!(store.create_user(&user).await.expect("user"), WriteOutcome::Done);
    let group = DirGroup {
        id: "group-1".into(),
        display_name: group.into(),
        external_id: None,
        resource: "{}".into(),
        version: 1,
        created: now,
        modified: now,
    };
    assert_eq!(
        store.create_group(&group, &["user-1".into()]).await.expect("group"),
        WriteOutcome::Done
    );
}

/// How often the store was asked to `operation`, from the metrics.
fn store_calls(t: &TestAuth, operation: &str) -> u64 {
    let wanted = format!("doorward_store_operation_duration_seconds_count{{operation=\"{operation}\"}} ");
    t.metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&wanted).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_login_the_directory_refuses_stores_no_session() {
    let t = TestAuth::new(DIRECTORY_DECIDES).await;
    provision(&t, "u1@example.com", "contractors").await;
    let key = key_for_user_name("corp", "u1@example.com");
    let store = t.auth.sessions.store();
    assert!(store.sessions_of(&key).await.expect("sessions").is_empty());

    let result = finish(&t.auth, login_result("u1", &[]), "/app", None).await;
    match result {
        Err(AuthError::LoginDenied(denial)) => {
            assert_eq!(denial.account, "u1@example.com");
            assert_eq!(
                denial.reason,
                "user `u1@example.com`: holds none of login.allowed_groups"
            );
        }
        other => panic!("expected LoginDenied, got {:?}", other.map(|r| r.status())),
    }
    assert!(store.sessions_of(&key).await.expect("sessions").is_empty());
    // Not stored and taken back: never stored at all.
    assert_eq!(store_calls(&t, "insert"), 0);
    assert_eq!(store_calls(&t, "delete"), 0);
    assert_eq!(t.auth.sessions.cached_count().await, 0);
}

#[tokio::test]
async fn a_login_the_directory_allows_stores_one_session() {
    let t = TestAuth::new(DIRECTORY_DECIDES).await;
    provision(&t, "u1@example.com", "staff").await;
    let key = key_for_user_name("corp", "u1@example.com");
    let reply = finish(&t.auth, login_result("u1", &[]), "/app", None)
        .await
        .expect("admitted");
    assert_eq!(reply.status(), http::StatusCode::FOUND);
    assert_eq!(reply.headers()[http::header::LOCATION], "/app");
    let store = t.auth.sessions.store();
    assert_eq!(store.sessions_of(&key).await.expect("sessions").len(), 1);
    assert_eq!(store_calls(&t, "insert"), 1);
}

#[tokio::test]
async fn a_login_the_claims_refuse_is_refused_before_the_directory_is_read() {
    let t = TestAuth::new(&format!("{CORP}\n[identity.login]\nallowed_groups = [\"staff\"]\n")).await;
    let result = finish(&t.auth, login_result("u2", &["guests"]), "/app", None).await;
    match result {
        Err(AuthError::LoginDenied(denial)) => assert_eq!(
            denial.reason,
            "user `u2@example.com` from `corp`: holds none of login.allowed_groups"
        ),
        other => panic!("expected LoginDenied, got {:?}", other.map(|r| r.status())),
    }
    assert_eq!(store_calls(&t, "insert"), 0);
}
