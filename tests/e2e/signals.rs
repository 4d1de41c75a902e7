//! The shared-signals receiver end to end (issue 21): a real SSF
//! transmitter pushes CAEP and RISC events to replica A of two doorward
//! replicas sharing PostgreSQL, and each event's effect shows on the
//! affected user's requests on replica B within a second (A answers the
//! push once it applied the event; B hears the store's notice a few
//! milliseconds later), with no effect on another user or on the same
//! email at another provider; an open WebSocket on B closes within a
//! second of `session-revoked`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sqlx::Connection;
use tokio::net::TcpListener;

use crate::generations::{closed_after, echoes, open_ws};
use crate::idp::{raw_request, Browser, Idp, Page, CLIENT_SECRET};
use crate::postgres::{TestPostgres, PASSWORD};
use crate::scenario::SESSION_KEY;
use crate::ssf_peer::{caep, email, iss_sub, risc, Transmitter, AUDIENCE, PUSH_TOKEN};
use crate::support::{Proxy, Upstream, WsEcho};

/// The `[[signals]]` block's name (and the push path's last segment).
pub const NAME: &str = "idp-signals";

/// A transmitter, two IdPs (`test-idp`, whose users the transmitter speaks
/// of, and `second`, with the same accounts and emails), one upstream, a
/// WebSocket echo, and replicas A (the public URL, pushed to) and B on
/// one PostgreSQL database.
pub struct Rig {
    pub ssf: Transmitter,
    pub idp: Idp,
    pub second: Idp,
    pub upstream: Upstream,
    _echo: WsEcho,
    pub base: String,
    pub other: String,
    db: String,
    _a: Proxy,
    _b: Proxy,
}

impl Rig {
    pub async fn start() -> Self {
        let pg = TestPostgres::shared();
        let ssf = Transmitter::start();
        let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind a");
        let l2 = TcpListener::bind("127.0.0.1:0").await.expect("bind b");
        let base = format!("http://{}", l1.local_addr().expect("addr"));
        let other = format!("http://{}", l2.local_addr().expect("addr"));
        let clients = json!([Idp::doorward_client(
            &base,
            &format!("{base}/_doorward/backchannel-logout")
        )]);
        let idp = Idp::start(&clients, &Idp::accounts(), &[]);
        let second = Idp::start(&clients, &Idp::accounts(), &[]);
        let upstream = Upstream::start().await;
        let echo = WsEcho::start().await;
        let url = pg.fresh_database().await;
        let db = url.rsplit('/').next().expect("db").to_string();
        let provider = |name: &str, issuer: &str| {
            format!(
                "[[provider]]\nname = \"{name}\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"doorward\"\n\
                 client_secret = \"{CLIENT_SECRET}\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n"
            )
        };
        // The OP's tokens live 60 s and doorward refreshes 60 s before
        // expiry by default, so every request would refresh; a refresh takes
        // the claims from the OP again (which knows of no change) and would
        // hide what token-claims-change did.
        let config = format!(
            "[server]\npublic_url = \"{base}\"\n[log]\nlevel = \"warn\"\n[store]\nurl = \"{store}\"\npassword = \"{pw}\"\n\
             [session]\nkeys = [\"{SESSION_KEY}\"]\nrefresh_before = \"1s\"\n{pa}{pb}\
             [[route]]\nname = \"app\"\nupstream = \"{up}\"\n\
             [[route]]\nname = \"secure\"\npath_prefix = \"/secure/\"\nupstream = \"{up}\"\n\
             require_assurance = [\"nist-aal2\"]\nrequire_compliant_device = true\n\
             [[route]]\nname = \"ws\"\npath_prefix = \"/ws/\"\nupstream = \"http://{echo}\"\n\
             [[signals]]\nname = \"{NAME}\"\nissuer = \"{ssf}\"\nprovider = \"test-idp\"\naudience = \"{AUDIENCE}\"\n\
             push_token = \"{PUSH_TOKEN}\"\n",
            store = pg.url_without_password(&db),
            pw = PASSWORD.replace('\\', "\\\\"),
            pa = provider("test-idp", &idp.issuer),
            pb = provider("second", &second.issuer),
            up = upstream.url(),
            echo = echo.addr,
            ssf = ssf.issuer,
        );
        let a = Proxy::start_on(&config, l1).await;
        let b = Proxy::start_on(&config, l2).await;
        ssf.push_stream(&format!("{base}/_doorward/ssf/{NAME}")).await;
        let rig = Self {
            ssf,
            idp,
            second,
            upstream,
            _echo: echo,
            base,
            other,
            db,
            _a: a,
            _b: b,
        };
        for replica in [rig.base.clone(), rig.other.clone()] {
            ready(&replica, &["store: ok\n", &format!("signals {NAME}: metadata loaded")]).await;
        }
        rig
    }

    /// `user` logged in through provider `provider` (`test-idp` or
    /// `second`) on replica A.
    pub async fn login(&self, provider: &str, user: &str) -> Browser {
        let mut browser = Browser::default();
        let page = self.try_login(&mut browser, provider, user).await;
        assert_eq!(page.status, 200, "login of {user} at {provider}: {}", page.body);
        browser
    }

    /// A login attempt: the page it ends on.
    pub async fn try_login(&self, browser: &mut Browser, provider: &str, user: &str) -> Page {
        let idp = if provider == "second" { &self.second } else { &self.idp };
        let url = format!("{}/_doorward/login?provider={provider}&rd=%2Fin", self.base);
        browser.login(&url, user, idp).await
    }

    /// The status of `browser`'s next request to `path` on replica B, as
    /// an API client (`json`) or a page load.
    pub async fn on_b(&self, browser: &Browser, path: &str, json: bool) -> u16 {
        let cookie = format!("doorward={}", browser.cookie("doorward").expect("session cookie").value);
        let accept = if json { "application/json" } else { "text/html" };
        let url = url::Url::parse(&format!("{}{path}", self.other)).expect("url");
        let page = raw_request("GET", &url, &[("cookie", &cookie), ("accept", accept)], Bytes::new()).await;
        if page.status == 302 {
            let to = page.location().expect("location");
            assert!(to.path().starts_with("/_doorward/login"), "302 to {to}");
        }
        page.status
    }

    /// Waits until `browser`'s requests to `path` on B get `want`, which
    /// the promise says takes under a second (the store's notices reach B
    /// a moment after A answered the push); how long it took.
    pub async fn within(&self, browser: &Browser, path: &str, json: bool, want: u16, what: &str) -> Duration {
        let since = Instant::now();
        loop {
            let status = self.on_b(browser, path, json).await;
            if status == want {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "{what}: B still answers {status}, not {want}, a second after the push"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The IdP sessions (`sid`) of `user`'s sessions at `test-idp`, from
    /// the store.
    pub async fn sids(&self, user: &str) -> Vec<String> {
        let options = TestPostgres::shared().connect_options(&self.db);
        let mut db = sqlx::PgConnection::connect_with(&options).await.expect("connect");
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT sid FROM sessions WHERE provider = 'test-idp' AND subject = $1")
                .bind(user)
                .fetch_all(&mut db)
                .await
                .expect("sessions");
        rows.into_iter().filter_map(|(sid,)| sid).collect()
    }
}

/// Waits (up to 10 s) until `base`'s readiness report has every one of
/// `lines`; the report.
pub async fn ready(base: &str, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = Browser::default().get(&format!("{base}/_doorward/readyz")).await;
        if lines.iter().all(|line| page.body.contains(line)) {
            return page.body;
        }
        assert!(
            Instant::now() < deadline,
            "{base} never reported {lines:?}: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of the metric line starting with `series` on `base`.
pub async fn metric(base: &str, series: &str) -> Option<f64> {
    let page = Browser::default().get(&format!("{base}/_doorward/metrics")).await;
    page.body
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

#[tokio::test]
async fn session_revocations_by_user_email_and_session_reach_only_their_sessions_on_the_other_replica() {
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    let bob = rig.login("test-idp", "bob").await;
    let bob_elsewhere = rig.login("second", "bob").await;
    for browser in [&alice, &bob, &bob_elsewhere] {
        assert_eq!(rig.on_b(browser, "/warm", true).await, 200, "B admits (and caches)");
    }

    // By iss_sub: alice's session only.
    let revoked = caep("session-revoked");
    rig.ssf
        .accepted(&revoked, json!({}), iss_sub(&rig.idp.issuer, "alice"))
        .await;
    let delay = rig
        .within(&alice, "/next", true, 401, "alice's session ended on B")
        .await;
    eprintln!("session-revoked pushed to A: refused on B {delay:?} after A's answer");
    assert_eq!(
        rig.on_b(&alice, "/next", false).await,
        302,
        "a page load is sent to log in"
    );
    assert_eq!(rig.on_b(&bob, "/next", true).await, 200, "bob untouched");
    // The same sub at the other provider's issuer names nobody here.
    rig.ssf
        .accepted(&revoked, json!({}), iss_sub(&rig.second.issuer, "bob"))
        .await;
    assert_eq!(
        rig.on_b(&bob, "/next", true).await,
        200,
        "another issuer's bob is another person"
    );
    assert_eq!(rig.on_b(&bob_elsewhere, "/next", true).await, 200);

    // By email: bob at test-idp, never bob@example.com at `second`.
    rig.ssf.accepted(&revoked, json!({}), email("bob@example.com")).await;
    rig.within(&bob, "/next", true, 401, "bob's session ended on B").await;
    assert_eq!(
        rig.on_b(&bob_elsewhere, "/next", true).await,
        200,
        "the same email at another provider is another person"
    );

    // By session: a complex subject naming one of alice's two sessions.
    let first = rig.login("test-idp", "alice").await;
    let first_sid = rig.sids("alice").await;
    assert_eq!(first_sid.len(), 1, "the test OP gives the login a sid: {first_sid:?}");
    let second = rig.login("test-idp", "alice").await;
    let sids = rig.sids("alice").await;
    assert_eq!(sids.len(), 2, "{sids:?}");
    assert_ne!(sids[0], sids[1], "two browsers, two IdP sessions");
    let subject = json!({
        "user": iss_sub(&rig.idp.issuer, "alice"),
        "session": {"format": "opaque", "id": first_sid[0]},
    });
    rig.ssf.accepted(&revoked, json!({}), subject).await;
    rig.within(&first, "/next", true, 401, "the named session ended").await;
    assert_eq!(
        rig.on_b(&second, "/next", true).await,
        200,
        "alice's other session stays"
    );

    // credential-change ends every session of the user.
    rig.ssf
        .accepted(
            &caep("credential-change"),
            json!({"credential_type": "password", "change_type": "update"}),
            email("alice@example.com"),
        )
        .await;
    rig.within(&second, "/next", true, 401, "credential-change ended it")
        .await;
    assert_eq!(rig.on_b(&bob_elsewhere, "/next", true).await, 200);
}

#[tokio::test]
async fn claims_assurance_and_device_signals_change_identity_and_route_access_on_the_other_replica() {
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    let bob = rig.login("test-idp", "bob").await;
    let groups_seen = |browser: &Browser| {
        let cookie = browser.cookie("doorward").expect("cookie").value.clone();
        let other = rig.other.clone();
        let upstream = &rig.upstream;
        async move {
            let url = url::Url::parse(&format!("{other}/who")).expect("url");
            let page = raw_request("GET", &url, &[("cookie", &format!("doorward={cookie}"))], Bytes::new()).await;
            assert_eq!(page.status, 200, "{}", page.body);
            upstream
                .last()
                .header("x-forwarded-groups")
                .unwrap_or_default()
                .to_string()
        }
    };
    assert!(groups_seen(&alice).await.contains("engineers"));
    assert!(
        rig.on_b(&alice, "/secure/x", true).await == 200,
        "no signal yet: the login decides"
    );

    // token-claims-change: the new groups claim is alice's identity on B.
    rig.ssf
        .accepted(
            &caep("token-claims-change"),
            json!({"claims": {"groups": ["finance"]}}),
            iss_sub(&rig.idp.issuer, "alice"),
        )
        .await;
    let changed = Instant::now();
    let mut groups = groups_seen(&alice).await;
    while !groups.contains("finance") && changed.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        groups = groups_seen(&alice).await;
    }
    assert!(
        groups.contains("finance") && !groups.contains("engineers"),
        "B forwards the changed claims: {groups}"
    );
    let bobs = groups_seen(&bob).await;
    assert_eq!(
        bobs, "Marketing%20Team",
        "bob's identity unchanged (groups are percent-encoded)"
    );

    // assurance-level-change below the route's level: sent to log in there.
    let assurance = caep("assurance-level-change");
    let lowered = json!({"namespace": "NIST-AAL", "current_level": "nist-aal1", "event_timestamp": now() - 5});
    rig.ssf.accepted(&assurance, lowered, email("alice@example.com")).await;
    rig.within(&alice, "/secure/x", false, 302, "aal1 is sent to log in")
        .await;
    assert_eq!(rig.on_b(&alice, "/secure/x", true).await, 401);
    assert_eq!(
        rig.on_b(&alice, "/elsewhere", true).await,
        200,
        "other routes still pass"
    );
    assert_eq!(rig.on_b(&bob, "/secure/x", true).await, 200, "bob untouched");
    // A newer event raises it again; an older one arriving late does not lower it.
    let raised = json!({"namespace": "NIST-AAL", "current_level": "nist-aal2", "event_timestamp": now()});
    rig.ssf.accepted(&assurance, raised, email("alice@example.com")).await;
    rig.within(&alice, "/secure/x", true, 200, "aal2 is enough").await;
    let stale = json!({"namespace": "NIST-AAL", "current_level": "nist-aal1", "event_timestamp": now() - 30});
    rig.ssf.accepted(&assurance, stale, email("alice@example.com")).await;
    assert_eq!(
        rig.on_b(&alice, "/secure/x", true).await,
        200,
        "an older level never wins"
    );

    // device-compliance-change: bob's device is not compliant.
    rig.ssf
        .accepted(
            &caep("device-compliance-change"),
            json!({"current_status": "not-compliant", "previous_status": "compliant"}),
            iss_sub(&rig.idp.issuer, "bob"),
        )
        .await;
    rig.within(
        &bob,
        "/secure/x",
        false,
        302,
        "a non-compliant device is sent to log in",
    )
    .await;
    assert_eq!(rig.on_b(&bob, "/secure/x", true).await, 401);
    assert_eq!(rig.on_b(&bob, "/elsewhere", true).await, 200);
    assert_eq!(
        rig.on_b(&alice, "/secure/x", true).await,
        200,
        "alice's device was not named, and her older aal1 never won"
    );
}

#[tokio::test]
async fn account_disabled_ends_sessions_and_refuses_logins_until_a_newer_account_enabled() {
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    let bob = rig.login("test-idp", "bob").await;
    let alice_elsewhere = rig.login("second", "alice").await;
    let alice_id = iss_sub(&rig.idp.issuer, "alice");
    let disabled_at = now() - 10;

    rig.ssf
        .accepted(
            &risc("account-disabled"),
            json!({"reason": "hijacking", "event_timestamp": disabled_at}),
            alice_id.clone(),
        )
        .await;
    rig.within(&alice, "/next", true, 401, "alice's session ended on B")
        .await;
    assert_eq!(rig.on_b(&bob, "/next", true).await, 200, "bob untouched");
    assert_eq!(
        rig.on_b(&alice_elsewhere, "/next", true).await,
        200,
        "alice at `second` untouched"
    );
    let mut browser = Browser::default();
    let refused = rig.try_login(&mut browser, "test-idp", "alice").await;
    assert_eq!(refused.status, 403, "a new login is refused: {}", refused.body);
    rig.login("second", "alice").await;

    // An account-enabled from before the disabling arrives late: still refused.
    let older = json!({"event_timestamp": disabled_at - 10});
    rig.ssf
        .accepted(&risc("account-enabled"), older, alice_id.clone())
        .await;
    let mut browser = Browser::default();
    let refused = rig.try_login(&mut browser, "test-idp", "alice").await;
    assert_eq!(refused.status, 403, "an older account-enabled undoes nothing");

    // A newer one opens the account again.
    rig.ssf
        .accepted(&risc("account-enabled"), json!({"event_timestamp": now()}), alice_id)
        .await;
    let back = rig.login("test-idp", "alice").await;
    assert_eq!(rig.on_b(&back, "/next", true).await, 200, "alice logs in again");
}

#[tokio::test]
async fn session_revoked_closes_the_users_websocket_on_the_other_replica_within_a_second() {
    let rig = Rig::start().await;
    let alice = rig.login("test-idp", "alice").await;
    let bob = rig.login("test-idp", "bob").await;
    let mut alice_ws = open_ws(&rig.other, &alice).await;
    let mut bob_ws = open_ws(&rig.other, &bob).await;

    let sent = Instant::now();
    rig.ssf
        .accepted(&caep("session-revoked"), json!({}), email("alice@example.com"))
        .await;
    let delay = closed_after(&mut alice_ws, sent).await;
    eprintln!("session-revoked pushed to A: tunnel on B closed {delay:?} after the push began");
    assert!(delay < Duration::from_secs(1), "closed after {delay:?}");
    assert!(echoes(&mut bob_ws).await, "bob's tunnel stays open");
}
