//! Facts carry their source (issue 20): the SCIM directory is bound to one
//! provider, so a user of another IdP with a provisioned email is another
//! person (on two replicas sharing PostgreSQL); `require_provisioned`
//! refuses unmatched logins and bearer tokens and fails closed when the
//! directory cannot be read; a removed provider's sessions end after a
//! SIGHUP and after a restart.

use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;

use crate::child::ChildDoorward;
use crate::faults_store::Relay;
use crate::idp::{raw_request, Browser, Idp, Page, CLIENT_SECRET};
use crate::postgres::{TestPostgres, PASSWORD};
use crate::scenario::{api_client_tokens, API_RESOURCE, SESSION_KEY};
use crate::scim::{has, scim_config, ScimClient, DOORWARD, USER};
use crate::support::{get, write_config, Proxy, Upstream};

/// Two IdPs (two issuers) configured as `test-idp` and `second`, one
/// upstream, and two doorward replicas on one PostgreSQL database; logins
/// go through replica one (the `public_url`).
struct Two {
    a: Idp,
    b: Idp,
    upstream: Upstream,
    base: String,
    other: String,
    _r1: Proxy,
    _r2: Proxy,
}

impl Two {
    async fn start(pg: &TestPostgres, scim_lines: &str) -> Self {
        let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind one");
        let l2 = TcpListener::bind("127.0.0.1:0").await.expect("bind two");
        let base = format!("http://{}", l1.local_addr().expect("addr"));
        let other = format!("http://{}", l2.local_addr().expect("addr"));
        let clients = json!([
            Idp::doorward_client(&base, &format!("{base}/_doorward/backchannel-logout")),
            Idp::api_client()
        ]);
        let env = [("OIDC_API_RESOURCE", API_RESOURCE)];
        let a = Idp::start(&clients, &Idp::accounts(), &env);
        let b = Idp::start(&clients, &Idp::accounts(), &env);
        assert_ne!(a.issuer, b.issuer, "two issuers");
        let upstream = Upstream::start().await;
        let url = pg.fresh_database().await;
        let db = url.rsplit('/').next().expect("db").to_string();
        let provider = |name: &str, issuer: &str| {
            format!(
                "[[provider]]\nname = \"{name}\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"doorward\"\n\
                 client_secret = \"{CLIENT_SECRET}\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n\
                 bearer_audiences = [\"{API_RESOURCE}\"]\n"
            )
        };
        let config = format!(
            "[server]\npublic_url = \"{base}\"\n[log]\nlevel = \"warn\"\n[store]\nurl = \"{store}\"\npassword = \"{pw}\"\n\
             [session]\nkeys = [\"{SESSION_KEY}\"]\n{pa}{pb}\
             [[route]]\nname = \"app\"\nupstream = \"{up}\"\nbearer = true\n\
             [[route]]\nname = \"admin\"\npath_prefix = \"/admin\"\nupstream = \"{up}\"\nbearer = true\n\
             require_roles = [\"admin\"]\n{scim}{scim_lines}",
            store = pg.url_without_password(&db),
            pw = PASSWORD.replace('\\', "\\\\"),
            pa = provider("test-idp", &a.issuer),
            pb = provider("second", &b.issuer),
            up = upstream.url(),
            scim = scim_config("merged"),
        );
        let r1 = Proxy::start_on(&config, l1).await;
        let r2 = Proxy::start_on(&config, l2).await;
        Self {
            a,
            b,
            upstream,
            base,
            other,
            _r1: r1,
            _r2: r2,
        }
    }

    /// Logs `user` in through provider `provider` at `idp`, landing on `path`.
    async fn login(&self, provider: &str, idp: &Idp, user: &str, path: &str) -> (Browser, Page) {
        let mut browser = Browser::default();
        let rd: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        let page = browser
            .login(
                &format!("{}/_doorward/login?provider={provider}&rd={rd}", self.base),
                user,
                idp,
            )
            .await;
        (browser, page)
    }

    /// What the upstream saw as `header` on `browser`'s request to `url`.
    async fn seen(&self, browser: &mut Browser, url: &str, header: &str) -> Option<String> {
        let page = browser.get(url).await;
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        let seen = self.upstream.last();
        assert!(url.ends_with(&seen.target), "{url} reached the upstream");
        seen.header(header).map(str::to_string)
    }
}

/// bob@example.com in the directory, with the `admin` role and a group.
async fn provision_bob(scim: &ScimClient) {
    let id = scim
        .create_user(
            "bob@example.com",
            json!({"schemas": [USER, DOORWARD], DOORWARD: {"roles": ["admin"]}}),
        )
        .await;
    scim.create_group("directory-admins", &[&id]).await;
}

async fn bearer(url: &str, token: &str) -> Page {
    let auth = format!("Bearer {token}");
    raw_request(
        "GET",
        &url::Url::parse(url).expect("url"),
        &[("authorization", &auth), ("accept", "application/json")],
        bytes::Bytes::new(),
    )
    .await
}

fn access_token(tokens: &serde_json::Value) -> String {
    tokens["access_token"].as_str().expect("access token").to_string()
}

#[tokio::test]
async fn another_providers_user_with_a_provisioned_email_never_gets_the_directorys_facts() {
    let pg = TestPostgres::shared();
    let two = Two::start(pg, "provider = \"test-idp\"\n").await;
    provision_bob(&ScimClient::of(&two.base)).await;

    // The directory's own bob (test-idp): its role and group, on both replicas.
    let (mut bob_a, page) = two.login("test-idp", &two.a, "bob", "/admin/a").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for base in [&two.base, &two.other] {
        let roles = two
            .seen(&mut bob_a, &format!("{base}/admin/a2"), "x-forwarded-roles")
            .await;
        assert!(has(&roles, "admin"), "{base}: {roles:?}");
        let groups = two.seen(&mut bob_a, &format!("{base}/g"), "x-forwarded-groups").await;
        assert!(has(&groups, "directory-admins"), "{base}: {groups:?}");
    }

    // bob@example.com through `second`: another person. The admin route
    // refuses him, and neither replica hands him a directory role or group.
    let (mut bob_b, page) = two.login("second", &two.b, "bob", "/admin/b").await;
    assert_eq!(page.status, 403, "{}", page.body);
    for base in [&two.base, &two.other] {
        let refused = bob_b.get(&format!("{base}/admin/b2")).await;
        assert_eq!(refused.status, 403, "{base}: {}", refused.body);
        let roles = two.seen(&mut bob_b, &format!("{base}/b"), "x-forwarded-roles").await;
        assert!(!has(&roles, "admin"), "{base}: {roles:?}");
        let groups = two.seen(&mut bob_b, &format!("{base}/b"), "x-forwarded-groups").await;
        assert_eq!(
            groups.as_deref(),
            Some("Marketing%20Team"),
            "{base}: the IdP's own only"
        );
        assert_eq!(two.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
    }

    // Bearer tokens alike: `second`'s bob is refused the admin route.
    let token = access_token(&api_client_tokens(&two.b, "bob").await);
    for base in [&two.base, &two.other] {
        let page = bearer(&format!("{base}/admin/t"), &token).await;
        assert_eq!(page.status, 403, "{base}: {}", page.body);
    }
    let token = access_token(&api_client_tokens(&two.a, "bob").await);
    assert_eq!(bearer(&format!("{}/admin/t", two.other), &token).await.status, 200);
}

#[tokio::test]
async fn require_provisioned_refuses_unmatched_logins_and_tokens_and_fails_closed() {
    let pg = TestPostgres::start();
    let two = Two::start(&pg, "provider = \"test-idp\"\nrequire_provisioned = true\n").await;
    provision_bob(&ScimClient::of(&two.base)).await;

    // alice is not in the directory: no session through the bound provider.
    let (mut alice, page) = two.login("test-idp", &two.a, "alice", "/x").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(alice.cookie("doorward").is_none(), "no session");
    assert_eq!(alice.get(&format!("{}/x", two.base)).await.status, 302, "not logged in");
    // Nor by bearer token (on either replica).
    let token = access_token(&api_client_tokens(&two.a, "alice").await);
    for base in [&two.base, &two.other] {
        let page = bearer(&format!("{base}/x"), &token).await;
        assert_eq!(page.status, 401, "{base}: {}", page.body);
    }
    // The provisioned bob passes, by token and by login.
    let bob_token = access_token(&api_client_tokens(&two.a, "bob").await);
    assert_eq!(bearer(&format!("{}/x", two.other), &bob_token).await.status, 200);
    let (_, page) = two.login("test-idp", &two.a, "bob", "/y").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The other provider's users are not the directory's business.
    let (_, page) = two.login("second", &two.b, "alice", "/z").await;
    assert_eq!(page.status, 200, "{}", page.body);

    // The directory cannot be read: a token never verified before is a
    // 503 with Retry-After, not a pass; a login is the 503 page.
    let fresh = access_token(&api_client_tokens(&two.a, "bob").await);
    pg.stop().await;
    for base in [&two.base, &two.other] {
        let page = bearer(&format!("{base}/x"), &fresh).await;
        assert_eq!(page.status, 503, "{base}: {}", page.body);
        assert_eq!(page.header("retry-after"), Some("5"), "{base}");
    }
    let (mut late, page) = two.login("test-idp", &two.a, "bob", "/w").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(late.cookie("doorward").is_none(), "never a session");
    let again = late.get(&format!("{}/w", two.base)).await;
    assert_ne!(again.status, 200);
}

/// The real binary's config: JSON log at info, SQLite in `store`, and the
/// providers given.
fn child_config(base: &str, upstream: &str, store: &std::path::Path, providers: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{base}\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n\
         [store]\nurl = \"sqlite://{}/doorward.db\"\n[session]\nkeys = [\"{SESSION_KEY}\"]\n\
         [[route]]\nname = \"app\"\nupstream = \"{upstream}\"\n",
        store.display()
    );
    for (name, issuer) in providers {
        text.push_str(&format!(
            "[[provider]]\nname = \"{name}\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"doorward\"\n\
             client_secret = \"{CLIENT_SECRET}\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n"
        ));
    }
    text
}

fn rewrite(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("rewrite config");
}

/// The status of a request with `cookie` on `addr`.
async fn with_cookie(addr: std::net::SocketAddr, cookie: &str) -> u16 {
    let (status, _, _) = get(addr, "/private", &[("cookie", cookie), ("accept", "application/json")]).await;
    status.as_u16()
}

async fn log_in(relay: &Relay, provider: &str, idp: &Idp, user: &str) -> String {
    let mut browser = Browser::default();
    let url = format!("{}/_doorward/login?provider={provider}&rd=%2Fin", relay.base);
    let mut page = browser.login(&url, user, idp).await;
    // A provider added by a reload fetches its metadata first (a 503 until).
    for _ in 0..50 {
        if page.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = browser.login(&url, user, idp).await;
    }
    assert_eq!(page.status, 200, "{}", page.body);
    format!("doorward={}", browser.cookie("doorward").expect("session cookie").value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_providers_sessions_end_after_sighup_and_after_a_restart() {
    let relay = Relay::start().await;
    let clients = json!([Idp::doorward_client(
        &relay.base,
        &format!("{}/_doorward/backchannel-logout", relay.base)
    )]);
    let a = Idp::start(&clients, &Idp::accounts(), &[]);
    let b = Idp::start(&clients, &Idp::accounts(), &[]);
    let upstream = Upstream::start().await;
    let store = tempfile::tempdir().expect("store");
    let both = child_config(
        &relay.base,
        &upstream.url(),
        store.path(),
        &[("test-idp", &a.issuer), ("second", &b.issuer)],
    );
    let only_a = child_config(&relay.base, &upstream.url(), store.path(), &[("test-idp", &a.issuer)]);
    let config = write_config(&both);

    let (child, mut log) = ChildDoorward::serve_logged(config.path());
    relay.point_at(child.addr);
    let alice_a = log_in(&relay, "test-idp", &a, "alice").await;
    let bob_b = log_in(&relay, "second", &b, "bob").await;
    assert_eq!(with_cookie(child.addr, &bob_b).await, 200);

    // `second` removed, SIGHUP: its session is refused and ended in the store.
    rewrite(config.path(), &only_a);
    child.signal("HUP");
    let line = log.wait_for(&["sessions ended"]).await;
    assert!(line.contains("\"ended\":1"), "{line}");
    assert!(line.contains("provider removed"), "{line}");
    assert_eq!(with_cookie(child.addr, &bob_b).await, 401);
    assert_eq!(with_cookie(child.addr, &alice_a).await, 200, "test-idp's stay");
    // Putting it back does not bring the session back: it was deleted.
    rewrite(config.path(), &both);
    child.signal("HUP");
    log.wait_for(&["config reloaded"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(with_cookie(child.addr, &bob_b).await, 401);

    // A new session through `second`, then a restart without it.
    let bob_b = log_in(&relay, "second", &b, "bob").await;
    assert_eq!(with_cookie(child.addr, &bob_b).await, 200);
    drop(log);
    drop(child);
    rewrite(config.path(), &only_a);
    let (second, mut log) = ChildDoorward::serve_logged(config.path());
    relay.point_at(second.addr);
    assert_eq!(with_cookie(second.addr, &bob_b).await, 401);
    assert_eq!(with_cookie(second.addr, &alice_a).await, 200);
    // Ended at start, not merely refused: back with `second`, still out.
    rewrite(config.path(), &both);
    second.signal("HUP");
    log.wait_for(&["config reloaded"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(with_cookie(second.addr, &bob_b).await, 401);
}
