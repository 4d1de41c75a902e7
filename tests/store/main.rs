//! The store conformance suite: one set of tests, run unchanged against
//! every backend (the embedded SQLite and a real PostgreSQL started on
//! loopback), so both keep the same promises. Plus what only a shared
//! store has: revocation notices, and what happens when they are lost.

#[path = "../common/postgres.rs"]
mod postgres;

use std::future::Future;
use std::sync::Arc;

use doorward::secret::SecretString;
use doorward::store::{Invalidation, SessionKey, SessionRecord, SessionStore, Store, StoreOptions};

/// A fresh, empty store of each backend (the temp dir keeps SQLite's file).
async fn backends() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::open(
        &format!("sqlite://{}/s.db", dir.path().display()),
        &StoreOptions::default(),
    )
    .await
    .expect("sqlite");
    let pg = postgres::TestPostgres::shared();
    let url = pg.fresh_database().await;
    let db = url.rsplit('/').next().expect("db name").to_string();
    // The password from options, as doorward reads it from a secret.
    let options = StoreOptions {
        password: Some(SecretString::new(postgres::PASSWORD.into())),
        max_connections: 8,
    };
    let postgres = Store::open(&pg.url_without_password(&db), &options)
        .await
        .expect("postgres");
    vec![("sqlite", sqlite, Some(dir)), ("postgres", postgres, None)]
}

/// Runs `test` against every backend.
async fn each<F, Fut>(test: F)
where
    F: Fn(&'static str, Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for (name, store, _dir) in backends().await {
        test(name, store).await;
    }
}

fn record(n: u8, issuer: &str, subject: &str, sid: Option<&str>, expires_at: i64) -> SessionRecord {
    SessionRecord {
        key: SessionKey([n; 32]),
        provider: "idp".into(),
        issuer: issuer.into(),
        subject: subject.into(),
        sid: sid.map(str::to_string),
        logout_hint: Some("{\"value\":\"n\"}".into()),
        idp_expires_at: Some(expires_at - 10),
        claims: format!("{{\"merged\":{{\"sub\":\"{subject}\"}}}}"),
        tokens: vec![0, 1, 2, 3],
        token_expires_at: Some(500),
        created_at: 100,
        expires_at,
        last_seen: 100,
        last_refresh: 100,
        match_key: Some(format!("{subject}@example.com")),
    }
}

#[tokio::test]
async fn records_round_trip_update_touch_and_delete() {
    each(|name, store| async move {
        let mut r = record(1, "https://idp", "alice", Some("s1"), 10_000);
        store.insert(&r).await.expect("insert");
        assert_eq!(store.get(&r.key).await.expect("get").as_ref(), Some(&r), "{name}");
        assert!(store.insert(&r).await.is_err(), "{name}: a key is unique");
        r.claims = "{\"merged\":{}}".into();
        r.tokens = vec![9, 9];
        r.sid = Some("s2".into());
        r.last_refresh = 200;
        assert!(store.update(&r).await.expect("update"), "{name}");
        assert_eq!(store.get(&r.key).await.expect("get"), Some(r.clone()), "{name}");
        store.touch(&r.key, 300).await.expect("touch");
        store.touch(&r.key, 250).await.expect("touch never goes back");
        assert_eq!(
            store.get(&r.key).await.expect("get").map(|r| r.last_seen),
            Some(300),
            "{name}"
        );
        assert!(store.delete(&r.key).await.expect("delete"), "{name}");
        assert!(!store.delete(&r.key).await.expect("delete again"), "{name}");
        assert_eq!(store.get(&r.key).await.expect("get"), None, "{name}");
        assert!(
            !store.update(&r).await.expect("update gone"),
            "{name}: nothing to update"
        );
        store.ping().await.expect("ping");
    })
    .await;
}

#[tokio::test]
async fn expired_sessions_and_markers_are_purged_and_nothing_else() {
    each(|name, store| async move {
        store.insert(&record(1, "i", "a", None, 1_000)).await.expect("insert");
        store.insert(&record(2, "i", "b", None, 5_000)).await.expect("insert");
        assert!(store.remember_once("s", "old", 1_000).await.expect("mark"));
        assert!(store.remember_once("s", "new", 5_000).await.expect("mark"));
        assert_eq!(store.purge_expired(2_000).await.expect("purge"), 2, "{name}");
        assert!(store.get(&SessionKey([1; 32])).await.expect("get").is_none(), "{name}");
        assert!(store.get(&SessionKey([2; 32])).await.expect("get").is_some(), "{name}");
        assert!(
            store.remember_once("s", "old", 9_000).await.expect("mark"),
            "{name}: purged"
        );
        assert!(
            !store.remember_once("s", "new", 9_000).await.expect("mark"),
            "{name}: kept"
        );
    })
    .await;
}

#[tokio::test]
async fn sessions_are_found_by_subject_and_idp_session() {
    each(|name, store| async move {
        for (n, issuer, subject, sid) in [
            (1, "idp-a", "alice", Some("s1")),
            (2, "idp-a", "alice", Some("s2")),
            (3, "idp-a", "bob", Some("s1")),
            (4, "idp-b", "alice", Some("s1")),
        ] {
            store
                .insert(&record(n, issuer, subject, sid, 9_000))
                .await
                .expect("insert");
        }
        let mut by_both = store
            .delete_matching("idp-a", Some("alice"), Some("s1"))
            .await
            .expect("delete");
        assert_eq!(by_both, vec![SessionKey([1; 32])], "{name}");
        let by_sid = store.delete_matching("idp-a", None, Some("s1")).await.expect("delete");
        assert_eq!(by_sid, vec![SessionKey([3; 32])], "{name}");
        by_both = store
            .delete_matching("idp-a", Some("alice"), None)
            .await
            .expect("delete");
        assert_eq!(by_both, vec![SessionKey([2; 32])], "{name}");
        assert!(
            store
                .delete_matching("idp-a", None, None)
                .await
                .expect("delete")
                .is_empty(),
            "{name}"
        );
        assert!(
            store.get(&SessionKey([4; 32])).await.expect("get").is_some(),
            "{name}: another IdP's"
        );
    })
    .await;
}

#[tokio::test]
async fn replay_markers_are_accepted_once_under_concurrency() {
    each(|name, store| async move {
        let store = Arc::new(store);
        let attempts: Vec<_> = (0..24)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.remember_once("saml-assertion:idp", "_id-1", 9_000).await })
            })
            .collect();
        let mut fresh = 0;
        for attempt in attempts {
            if attempt.await.expect("task").expect("remember") {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "{name}: exactly one of 24 concurrent uses");
        assert!(
            store
                .remember_once("another-scope", "_id-1", 9_000)
                .await
                .expect("mark"),
            "{name}"
        );
    })
    .await;
}

#[tokio::test]
async fn one_refresh_lease_at_a_time_across_callers() {
    each(|name, store| async move {
        let r = record(7, "i", "a", None, 9_000);
        store.insert(&r).await.expect("insert");
        let store = Arc::new(store);
        let tries: Vec<_> = (0..16)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.lease_refresh(&SessionKey([7; 32]), 1_000, 1_030).await })
            })
            .collect();
        let mut won = 0;
        for t in tries {
            if t.await.expect("task").expect("lease") {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{name}: one holder");
        assert!(
            !store.lease_refresh(&r.key, 1_020, 1_050).await.expect("lease"),
            "{name}: still held"
        );
        assert!(
            store.lease_refresh(&r.key, 1_030, 1_060).await.expect("lease"),
            "{name}: expired lease"
        );
        assert!(store.update(&r).await.expect("update"), "{name}");
        assert!(
            store.lease_refresh(&r.key, 1_031, 1_061).await.expect("lease"),
            "{name}: update ends the lease"
        );
        assert!(
            !store
                .lease_refresh(&SessionKey([8; 32]), 1_000, 1_030)
                .await
                .expect("lease"),
            "{name}: no session, no lease"
        );
    })
    .await;
}

#[tokio::test]
async fn opening_a_migrated_store_again_keeps_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/s.db", dir.path().display());
    let pg = postgres::TestPostgres::shared();
    let pg_url = pg.fresh_database().await;
    for url in [url, pg_url] {
        let store = Store::open(&url, &StoreOptions::default()).await.expect("open");
        store.insert(&record(1, "i", "a", None, 9_000)).await.expect("insert");
        drop(store);
        let again = Store::open(&url, &StoreOptions::default()).await.expect("reopen");
        assert!(again.get(&SessionKey([1; 32])).await.expect("get").is_some(), "{url}");
    }
}

/// SQLite databases made by an earlier doorward (only the first migration)
/// are brought up to date with their sessions intact.
#[tokio::test]
async fn an_sqlite_store_of_the_previous_version_migrates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = tempfile::tempdir().expect("migration dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_sessions.sql"),
        first.path().join("0001_sessions.sql"),
    )
    .expect("copy");
    let url = format!("sqlite://{}/old.db", dir.path().display());
    {
        use sqlx::ConnectOptions;
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("options");
        let mut conn = options.create_if_missing(true).connect().await.expect("connect");
        let old = sqlx::migrate::Migrator::new(first.path()).await.expect("migrator");
        old.run(&mut conn).await.expect("old schema");
        sqlx::query(
            "INSERT INTO sessions (key, provider, issuer, subject, sid, identity, claims, tokens, \
             token_expires_at, created_at, expires_at, last_seen, last_refresh) \
             VALUES (?, 'idp', 'i', 'alice', 's1', '{}', '{}', x'00', NULL, 1, 9000, 1, 1)",
        )
        .bind(&[5u8; 32][..])
        .execute(&mut conn)
        .await
        .expect("an old session");
    }
    let store = Store::open(&url, &StoreOptions::default()).await.expect("migrates");
    let r = store.get(&SessionKey([5; 32])).await.expect("get").expect("kept");
    assert_eq!(
        (r.subject.as_str(), r.sid.as_deref(), r.logout_hint),
        ("alice", Some("s1"), None)
    );
    assert!(store.lease_refresh(&r.key, 10, 40).await.expect("new column works"));
}

#[tokio::test]
async fn a_providers_sessions_are_listed_by_origin_and_ended_together() {
    each(|name, store| async move {
        let mut other = record(3, "https://b", "carol", None, 9_000);
        other.provider = "b".into();
        for r in [
            record(1, "https://a", "alice", None, 9_000),
            record(2, "https://a", "bob", None, 9_000),
            other,
            record(4, "https://a-old", "dave", None, 9_000),
        ] {
            store.insert(&r).await.expect("insert");
        }
        let mut origins = store.session_origins().await.expect("origins");
        origins.sort();
        let expected: Vec<(String, String)> = [("b", "https://b"), ("idp", "https://a"), ("idp", "https://a-old")]
            .iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect();
        assert_eq!(origins, expected, "{name}");
        // Provider AND issuer: the same name under another issuer stays.
        let mut ended = store.delete_sessions_from("idp", "https://a").await.expect("delete");
        ended.sort_by_key(|k| k.0);
        assert_eq!(ended, [SessionKey([1; 32]), SessionKey([2; 32])], "{name}");
        assert!(store.get(&SessionKey([1; 32])).await.expect("get").is_none(), "{name}");
        assert!(store.get(&SessionKey([3; 32])).await.expect("get").is_some(), "{name}");
        assert!(store.get(&SessionKey([4; 32])).await.expect("get").is_some(), "{name}");
        assert!(store
            .delete_sessions_from("idp", "https://a")
            .await
            .expect("delete")
            .is_empty());
    })
    .await;
}

/// The next notice, within a bound.
async fn next(notices: &mut tokio::sync::mpsc::UnboundedReceiver<Invalidation>) -> Invalidation {
    tokio::time::timeout(std::time::Duration::from_secs(10), notices.recv())
        .await
        .expect("a notice in time")
        .expect("the channel is open")
}

#[tokio::test]
async fn a_shared_store_tells_every_replica_and_says_when_it_cannot() {
    let pg = postgres::TestPostgres::start();
    let url = pg.fresh_database().await;
    let a = Store::open(&url, &StoreOptions::default()).await.expect("replica a");
    let b = Store::open(&url, &StoreOptions::default()).await.expect("replica b");
    assert!(a.is_shared());
    let mut notices = b.subscribe().expect("postgres notices");
    assert_eq!(next(&mut notices).await, Invalidation::Restored, "listening");
    let r = record(3, "i", "a", Some("s"), 9_000);
    a.insert(&r).await.expect("insert");
    a.update(&r).await.expect("update");
    assert_eq!(next(&mut notices).await, Invalidation::Changed(r.key));
    a.delete(&r.key).await.expect("delete");
    assert_eq!(next(&mut notices).await, Invalidation::Revoked(r.key));
    a.insert(&r).await.expect("insert");
    a.delete_matching("i", Some("a"), None).await.expect("delete");
    assert_eq!(next(&mut notices).await, Invalidation::Revoked(r.key));
    a.insert(&r).await.expect("insert");
    assert_eq!(a.delete_sessions_from("idp", "i").await.expect("delete"), [r.key]);
    assert_eq!(
        next(&mut notices).await,
        Invalidation::Revoked(r.key),
        "a removed provider's"
    );

    // The notice connection killed: the replica is told, then it comes back.
    let killed = pg.terminate_backends(postgres::Backends::QueryLike("LISTEN%")).await;
    assert!(killed >= 1, "a LISTEN connection was there to kill");
    assert_eq!(next(&mut notices).await, Invalidation::Lost);
    assert_eq!(next(&mut notices).await, Invalidation::Restored);
    a.insert(&r).await.expect("insert");
    a.delete(&r.key).await.expect("delete");
    assert_eq!(
        next(&mut notices).await,
        Invalidation::Revoked(r.key),
        "notices flow again"
    );
}

mod directory {
    //! The SCIM directory's rows, on both backends.

    use std::sync::Arc;

    use doorward::store::directory::{DirGroup, DirUser, DirectoryStore, MemberChange, WriteOutcome};
    use doorward::store::{SessionKey, SessionStore};

    use super::{each, record};

    fn user(id: &str, name: &str) -> DirUser {
        DirUser {
            id: id.into(),
            user_name: name.into(),
            external_id: Some(format!("ext-{id}")),
            active: true,
            resource: format!("{{\"userName\":\"{name}\"}}"),
            version: 1,
            created: 100,
            modified: 100,
        }
    }

    fn group(id: &str, name: &str) -> DirGroup {
        DirGroup {
            id: id.into(),
            display_name: name.into(),
            external_id: None,
            resource: format!("{{\"displayName\":\"{name}\"}}"),
            version: 1,
            created: 100,
            modified: 100,
        }
    }

    #[tokio::test]
    async fn users_are_unique_by_name_ignoring_case_and_versioned() {
        each(|name, store| async move {
            assert_eq!(
                store
                    .create_user(&user("u1", "Alice@Example.com"))
                    .await
                    .expect("create"),
                WriteOutcome::Done
            );
            assert_eq!(
                store
                    .create_user(&user("u2", "alice@example.COM"))
                    .await
                    .expect("create"),
                WriteOutcome::Conflict,
                "{name}"
            );
            let found = store
                .find_user_by_name("ALICE@example.com")
                .await
                .expect("find")
                .expect("found");
            assert_eq!(found.id, "u1", "{name}");
            assert_eq!(
                store
                    .find_user_by_external_id("ext-u1")
                    .await
                    .expect("find")
                    .map(|u| u.id),
                Some("u1".into())
            );
            let mut changed = found.clone();
            changed.active = false;
            assert_eq!(
                store.replace_user(&changed, Some(2)).await.expect("replace"),
                WriteOutcome::VersionMismatch,
                "{name}"
            );
            assert_eq!(
                store.replace_user(&changed, Some(1)).await.expect("replace"),
                WriteOutcome::Done,
                "{name}"
            );
            let now = store.get_user("u1").await.expect("get").expect("there");
            assert_eq!((now.active, now.version), (false, 2), "{name}");
            assert_eq!(
                store.replace_user(&user("nope", "x"), None).await.expect("replace"),
                WriteOutcome::Missing
            );
            store.create_user(&user("u3", "bob")).await.expect("create");
            let (page, total) = store.page_users(1, 10).await.expect("page");
            assert_eq!((page.len(), total), (1, 2), "{name}");
            assert!(store.delete_user("u1").await.expect("delete"), "{name}");
            assert!(store.get_user("u1").await.expect("get").is_none(), "{name}");
        })
        .await;
    }

    #[tokio::test]
    async fn groups_keep_members_as_rows_and_refuse_unknown_ones() {
        each(|name, store| async move {
            for (id, n) in [("u1", "alice"), ("u2", "bob"), ("u3", "carol")] {
                store.create_user(&user(id, n)).await.expect("create");
            }
            assert_eq!(
                store
                    .create_group(&group("g1", "Engineers"), &["u1".into(), "u2".into()])
                    .await
                    .expect("create"),
                WriteOutcome::Done
            );
            assert_eq!(
                store
                    .create_group(&group("g2", "Bad"), &["u1".into(), "ghost".into()])
                    .await
                    .expect("create"),
                WriteOutcome::UnknownMember("ghost".into()),
                "{name}"
            );
            assert!(
                store.get_group("g2").await.expect("get").is_none(),
                "{name}: nothing partial is stored"
            );
            let edit = MemberChange::Edit {
                add: vec!["u3".into()],
                remove: vec!["u1".into()],
            };
            assert_eq!(
                store
                    .update_group(&group("g1", "Engineers"), Some(1), &edit)
                    .await
                    .expect("update"),
                WriteOutcome::Done
            );
            let mut members = store.group_members("g1").await.expect("members");
            members.sort();
            assert_eq!(members, ["u2", "u3"], "{name}");
            let mut named = store.group_member_names("g1").await.expect("names");
            named.sort();
            assert_eq!(
                named,
                [
                    ("u2".to_string(), "bob".to_string()),
                    ("u3".to_string(), "carol".to_string())
                ],
                "{name}"
            );
            let bad = MemberChange::Edit {
                add: vec!["ghost".into()],
                remove: vec!["u2".into()],
            };
            assert_eq!(
                store
                    .update_group(&group("g1", "Renamed"), None, &bad)
                    .await
                    .expect("update"),
                WriteOutcome::UnknownMember("ghost".into())
            );
            let unchanged = store.get_group("g1").await.expect("get").expect("there");
            assert_eq!(
                (unchanged.display_name.as_str(), unchanged.version),
                ("Engineers", 2),
                "{name}: rolled back"
            );
            assert_eq!(store.group_members("g1").await.expect("members").len(), 2, "{name}");
            assert_eq!(
                store
                    .update_group(&group("g1", "X"), Some(1), &MemberChange::None)
                    .await
                    .expect("update"),
                WriteOutcome::VersionMismatch
            );
            assert_eq!(
                store.groups_of_user("u2").await.expect("groups"),
                [("g1".to_string(), "Engineers".to_string())]
            );
            let facts = store.facts(Some("BOB"), None).await.expect("facts").expect("bob");
            assert_eq!(
                (facts.user_id.as_str(), facts.groups.clone()),
                ("u2", vec!["Engineers".to_string()])
            );
            assert!(store.delete_user("u2").await.expect("delete"));
            assert_eq!(
                store.group_members("g1").await.expect("members"),
                ["u3"],
                "{name}: membership gone too"
            );
            assert_eq!(
                store.find_group_by_name("engineers").await.expect("find").map(|g| g.id),
                Some("g1".into())
            );
            assert!(store.delete_group("g1").await.expect("delete"));
            assert!(store.groups_of_user("u3").await.expect("groups").is_empty(), "{name}");
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_member_additions_lose_no_member() {
        each(|name, store| async move {
            store.create_group(&group("g", "Big"), &[]).await.expect("create");
            for i in 0..20 {
                store
                    .create_user(&user(&format!("u{i}"), &format!("user{i}")))
                    .await
                    .expect("create");
            }
            let store = Arc::new(store);
            let adds: Vec<_> = (0..20)
                .map(|i| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let add = MemberChange::Edit {
                            add: vec![format!("u{i}")],
                            remove: vec![],
                        };
                        store.update_group(&group("g", "Big"), None, &add).await
                    })
                })
                .collect();
            for add in adds {
                assert_eq!(add.await.expect("task").expect("update"), WriteOutcome::Done, "{name}");
            }
            assert_eq!(store.group_members("g").await.expect("members").len(), 20, "{name}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_directory_users_sessions_are_found_and_ended() {
        each(|name, store| async move {
            store
                .insert(&record(1, "i", "alice", None, 9_000))
                .await
                .expect("insert");
            store
                .insert(&record(2, "i", "alice", None, 9_000))
                .await
                .expect("insert");
            store.insert(&record(3, "i", "bob", None, 9_000)).await.expect("insert");
            let mut keys = store.sessions_of("alice@example.com").await.expect("sessions");
            keys.sort_by_key(|k| k.0);
            assert_eq!(keys, [SessionKey([1; 32]), SessionKey([2; 32])], "{name}");
            store.announce_changed(&keys).await.expect("announce");
            assert_eq!(
                store
                    .delete_sessions_of("alice@example.com")
                    .await
                    .expect("delete")
                    .len(),
                2,
                "{name}"
            );
            assert!(store
                .sessions_of("alice@example.com")
                .await
                .expect("sessions")
                .is_empty());
            assert!(
                store.get(&SessionKey([3; 32])).await.expect("get").is_some(),
                "{name}: bob's stays"
            );
        })
        .await;
    }
}

mod operators {
    //! What `doorward sessions list|revoke` and the admin API ask of the
    //! store, on both backends.

    use super::*;
    use doorward::store::SessionSelector;

    fn named(n: u8, provider: &str, subject: &str, email: &str) -> SessionRecord {
        let mut r = record(n, &format!("https://{provider}"), subject, None, 9_000);
        r.provider = provider.into();
        r.claims = format!("{{\"merged\":{{\"sub\":\"{subject}\",\"email\":\"{email}\"}}}}");
        r.match_key = Some(format!("name:{email}"));
        r
    }

    fn by(user: Option<&str>, provider: Option<&str>, session: Option<&str>) -> SessionSelector {
        SessionSelector {
            user: user.map(str::to_string),
            provider: provider.map(str::to_string),
            session: session.map(str::to_string),
            ..SessionSelector::default()
        }
    }

    async fn seed(store: &Store) {
        for r in [
            named(1, "a", "alice-a", "alice@example.com"),
            named(2, "a", "alice-a", "alice@example.com"),
            named(3, "b", "alice-b", "alice@example.com"),
            named(4, "a", "bob", "bob@example.com"),
        ] {
            store.insert(&r).await.expect("insert");
        }
    }

    fn keys(records: &[SessionRecord]) -> Vec<u8> {
        let mut n: Vec<u8> = records.iter().map(|r| r.key.0[0]).collect();
        n.sort_unstable();
        n
    }

    fn sorted(found: Vec<SessionKey>) -> Vec<u8> {
        let mut n: Vec<u8> = found.iter().map(|k| k.0[0]).collect();
        n.sort_unstable();
        n
    }

    #[tokio::test]
    async fn sessions_are_listed_by_user_provider_and_key() {
        each(|name, store| async move {
            seed(&store).await;
            let list = |s: SessionSelector| {
                let store = store.clone();
                async move { keys(&store.list_sessions(&s).await.expect("list")) }
            };
            assert_eq!(list(by(None, None, None)).await, [1, 2, 3, 4], "{name}: all");
            assert_eq!(list(by(None, Some("a"), None)).await, [1, 2, 4], "{name}");
            assert_eq!(
                list(by(Some("alice@example.com"), None, None)).await,
                [1, 2, 3],
                "{name}"
            );
            assert_eq!(
                list(by(Some("alice@example.com"), Some("b"), None)).await,
                [3],
                "{name}: the same email from another IdP is another person"
            );
            assert_eq!(list(by(Some("bob"), None, None)).await, [4], "{name}: by subject");
            let key = SessionKey([2; 32]).to_hex();
            assert_eq!(
                list(by(None, None, Some(&key[..16]))).await,
                [2],
                "{name}: by key prefix"
            );
            assert_eq!(list(by(Some("nobody"), None, None)).await, Vec::<u8>::new(), "{name}");
        })
        .await;
    }

    #[tokio::test]
    async fn sessions_are_revoked_by_provider_user_and_key() {
        each(|name, store| async move {
            seed(&store).await;
            assert!(
                store
                    .revoke_sessions(&by(None, None, None))
                    .await
                    .expect("revoke")
                    .is_empty(),
                "{name}: an empty selector ends nothing"
            );
            let key = SessionKey([4; 32]).to_hex();
            assert_eq!(
                sorted(
                    store
                        .revoke_sessions(&by(None, None, Some(&key)))
                        .await
                        .expect("revoke")
                ),
                [4],
                "{name}"
            );
            assert_eq!(
                sorted(
                    store
                        .revoke_sessions(&by(Some("alice@example.com"), Some("a"), None))
                        .await
                        .expect("revoke")
                ),
                [1, 2],
                "{name}"
            );
            assert!(
                store.get(&SessionKey([3; 32])).await.expect("get").is_some(),
                "{name}: provider b's kept"
            );
            assert_eq!(
                sorted(store.revoke_sessions(&by(None, Some("b"), None)).await.expect("revoke")),
                [3],
                "{name}"
            );
            assert!(
                store
                    .list_sessions(&by(None, None, None))
                    .await
                    .expect("list")
                    .is_empty(),
                "{name}"
            );
            assert!(
                store
                    .revoke_sessions(&by(None, Some("b"), None))
                    .await
                    .expect("again")
                    .is_empty(),
                "{name}: nothing left to end"
            );
        })
        .await;
    }

    /// A second handle on the same database (another replica, or the CLI
    /// beside a running doorward on one SQLite file) hears revocations.
    #[tokio::test]
    async fn a_second_handle_on_the_same_database_hears_revocations() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = format!("sqlite://{}/s.db", dir.path().display());
        let pg = postgres::TestPostgres::shared();
        let pg_url = pg.fresh_database().await;
        for url in [sqlite, pg_url] {
            let running = Store::open(&url, &StoreOptions::default()).await.expect("running");
            let cli = Store::open(&url, &StoreOptions::default()).await.expect("cli");
            let mut notices = running.subscribe().expect("notices on every backend");
            if running.is_shared() {
                assert_eq!(next(&mut notices).await, Invalidation::Restored, "{url}: listening");
            } else {
                // The first poll finds where the notices end.
                tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            }
            seed(&cli).await;
            let started = std::time::Instant::now();
            cli.revoke_sessions(&by(Some("bob@example.com"), None, None))
                .await
                .expect("revoke");
            assert_eq!(
                next(&mut notices).await,
                Invalidation::Revoked(SessionKey([4; 32])),
                "{url}"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{url}: within a second"
            );
            cli.delete(&SessionKey([1; 32])).await.expect("delete");
            assert_eq!(
                next(&mut notices).await,
                Invalidation::Revoked(SessionKey([1; 32])),
                "{url}: every revocation"
            );
        }
    }
}
