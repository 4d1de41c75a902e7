//! Step-up per route against the real OP (node oidc-provider configured
//! with two acr values): a route asking for `acr` or `max_age` sends a
//! weaker session back to its provider with the ask, and the SAME session
//! is raised by what comes back; answers that fall short, or come back as
//! another user, are refused at their exact reason; bearer tokens and
//! forward-auth get the RFC 9470 challenge; clients cannot set the
//! assurance headers themselves.

use std::collections::HashMap;

use serde_json::{json, Value};
use url::Url;

use crate::idp::{raw_request, Browser, Form, Idp, Page};
use crate::scenario::{api_call, api_client_tokens, Options, Scenario};
use crate::support::LogCapture;

const PWD: &str = "urn:doorward:pwd";
const MFA: &str = "urn:doorward:mfa";
/// The OP's acr values, weakest first (its default login answers `pwd`).
const ACR_VALUES: &str = r#"["urn:doorward:pwd","urn:doorward:mfa"]"#;
/// The session cookie's name (the pending-login cookies only start with it).
const SESSION_COOKIE: &str = "doorward";

/// The challenge a route with `acr = [MFA]` and `max_age = "15m"` answers.
const CHALLENGE: &str = "Bearer realm=\"doorward\", error=\"insufficient_user_authentication\", \
     error_description=\"A different authentication level is required\", \
     acr_values=\"urn:doorward:mfa\", max_age=\"900\"";

/// doorward with `routes` (TOML) besides the catch-all `app` route, in front
/// of an OP that answers acr values.
async fn scenario(routes: &str, app_route: &str) -> Scenario {
    Scenario::start(Options {
        idp_env: vec![("OIDC_ACR_VALUES", ACR_VALUES)],
        route: app_route.into(),
        extra: routes.into(),
        ..Options::default()
    })
    .await
}

fn route(name: &str, prefix: &str, lines: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\npath_prefix = \"{prefix}\"\nupstream = \"@UPSTREAM@\"\n{lines}\n\n")
}

/// `user`'s claims from the OP's stock accounts plus test `controls`
/// (`_acr`, `_auth_age`, ...), as the OP's account.
async fn set_controls(idp: &Idp, user: &str, controls: Value) {
    let mut account = Idp::accounts()[user].clone();
    if let (Some(account), Value::Object(controls)) = (account.as_object_mut(), controls) {
        account.extend(controls);
    }
    idp.set_account(user, &account).await;
}

/// One browser flow, step by step: every URL requested, the prompts of the
/// OP forms submitted (as `user`), the session cookies doorward set, and
/// the page it ended on.
struct Walk {
    visited: Vec<Url>,
    prompts: Vec<String>,
    session_cookies_set: Vec<String>,
    last: Page,
}

impl Walk {
    /// The query of the authorization request doorward sent the browser to.
    fn authorization(&self, idp: &Idp) -> HashMap<String, String> {
        let auth = format!("{}/auth?", idp.issuer);
        let url = self
            .visited
            .iter()
            .find(|u| u.as_str().starts_with(&auth))
            .unwrap_or_else(|| panic!("no authorization request among {:?}", self.visited));
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

async fn walk(browser: &mut Browser, start: &str, user: &str, s: &Scenario) -> Walk {
    let mut visited = Vec::new();
    let mut prompts = Vec::new();
    let mut session_cookies_set = Vec::new();
    let mut url = Url::parse(start).expect("start url");
    let mut page = browser.request("GET", &url, None).await;
    for _ in 0..30 {
        visited.push(url.clone());
        if page.url.as_str().starts_with(&s.base) {
            session_cookies_set.extend(
                page.headers
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
                    .map(str::to_string),
            );
        }
        if (300..400).contains(&page.status) {
            url = page.location().expect("a redirect's location");
            page = browser.request("GET", &url, None).await;
        } else if page.url.as_str().starts_with(&s.idp.issuer) && page.status == 200 && page.body.contains("<form") {
            let form = Form::parse(&page.body).expect("the OP's form");
            let fields = form.filled_for(user);
            if let Some((_, prompt)) = fields.iter().find(|(name, _)| name == "prompt") {
                prompts.push(prompt.clone());
            }
            url = page.url.join(&form.action).expect("form action");
            page = browser.request("POST", &url, Some(&fields)).await;
        } else {
            return Walk {
                visited,
                prompts,
                session_cookies_set,
                last: page,
            };
        }
    }
    panic!("no end to the flow after 30 steps: {visited:?}");
}

fn assertion_claims(assertion: &str) -> Value {
    let payload = assertion.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
    )
    .expect("json")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn session_value(browser: &Browser) -> String {
    browser.cookie(SESSION_COOKIE).expect("a session cookie").value.clone()
}

#[tokio::test]
async fn a_weaker_session_steps_up_at_its_provider_and_the_same_session_is_raised() {
    let s = scenario(
        &route("admin", "/admin", &format!("acr = [\"{MFA}\"]\nmax_age = \"15m\"")),
        "",
    )
    .await;
    let mut alice = s.logged_in("alice", "/home").await;
    let seen = s.upstream.last();
    assert_eq!(seen.header("x-forwarded-acr"), Some(PWD), "the OP's default login");
    assert_eq!(seen.header("x-forwarded-amr"), Some("pwd"));
    let session = session_value(&alice);

    // The weaker session is sent to step up at its own provider.
    let before = s.upstream.requests().len();
    let page = alice.get(&s.url("/admin/panel?x=1")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.header("location"),
        Some("/_doorward/login?rd=%2Fadmin%2Fpanel%3Fx%3D1&provider=test-idp&route=admin")
    );
    assert_eq!(s.upstream.requests().len(), before, "nothing was forwarded");

    let location = page.location().expect("location");
    let flow = walk(&mut alice, location.as_str(), "alice", &s).await;
    let asked = flow.authorization(&s.idp);
    assert_eq!(asked.get("acr_values").map(String::as_str), Some(MFA));
    assert_eq!(asked.get("max_age").map(String::as_str), Some("900"));
    let claims: Value = serde_json::from_str(asked.get("claims").expect("a claims parameter")).expect("json");
    assert_eq!(
        claims,
        json!({"id_token": {"acr": {"essential": true, "values": [MFA]}}})
    );
    // The OP had a session (acr pwd); the essential acr made it ask for a
    // login again, and the grant needed no consent.
    assert_eq!(flow.prompts, ["login"]);
    assert_eq!(flow.last.status, 200, "{}: {}", flow.last.url, flow.last.body);
    assert_eq!(flow.last.url.path(), "/admin/panel");

    // The same session, raised: no new session cookie was set.
    assert!(flow.session_cookies_set.is_empty(), "{:?}", flow.session_cookies_set);
    assert_eq!(session_value(&alice), session);
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/admin/panel?x=1");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-acr"), Some(MFA));
    assert_eq!(seen.header("x-forwarded-amr"), Some("pwd,otp"));
    let assertion = assertion_claims(seen.header("x-doorward-assertion").expect("signed assertion"));
    assert_eq!(assertion["acr"], MFA);
    assert_eq!(assertion["amr"], json!(["pwd", "otp"]));
    let auth_time = assertion["auth_time"].as_i64().expect("auth_time");
    assert!((now() - 120..=now() + 5).contains(&auth_time), "auth_time {auth_time}");

    // From now on the route admits the session directly, and so does the
    // rest of the app.
    let page = alice.get(&s.url("/admin/again")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(alice.get(&s.url("/home")).await.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-acr"), Some(MFA));
}

#[tokio::test]
async fn max_age_sends_an_older_login_back_for_a_fresh_one() {
    let s = scenario(&route("recent", "/recent", "max_age = \"1m\""), "").await;
    // Alice's login at the OP is five minutes old: older than max_age and
    // the minute of clock skew doorward allows on top of it.
    set_controls(&s.idp, "alice", json!({"_auth_age": 300})).await;
    let mut alice = s.logged_in("alice", "/home").await;
    let old = assertion_claims(s.upstream.last().header("x-doorward-assertion").expect("assertion"));
    let old_auth_time = old["auth_time"].as_i64().expect("auth_time");
    assert!(
        now() - old_auth_time >= 295,
        "auth_time {old_auth_time} is not backdated"
    );
    let session = session_value(&alice);

    let page = alice.get(&s.url("/recent/x")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.header("location"),
        Some("/_doorward/login?rd=%2Frecent%2Fx&provider=test-idp&route=recent")
    );
    // The next login at the OP is made now.
    set_controls(&s.idp, "alice", json!({})).await;
    let location = page.location().expect("location");
    let flow = walk(&mut alice, location.as_str(), "alice", &s).await;
    let asked = flow.authorization(&s.idp);
    assert_eq!(asked.get("max_age").map(String::as_str), Some("60"));
    assert!(!asked.contains_key("acr_values"), "{asked:?}");
    // The OP honoured max_age: its session was too old, so it asked for a
    // login although it had one.
    assert_eq!(flow.prompts, ["login"]);
    assert_eq!(flow.last.status, 200, "{}: {}", flow.last.url, flow.last.body);
    assert_eq!(session_value(&alice), session, "the same session");
    let fresh = assertion_claims(s.upstream.last().header("x-doorward-assertion").expect("assertion"));
    let auth_time = fresh["auth_time"].as_i64().expect("auth_time");
    assert!(now() - auth_time < 60, "auth_time {auth_time} is not fresh");
    assert_eq!(alice.get(&s.url("/recent/y")).await.status, 200);
}

#[tokio::test]
async fn answers_that_do_not_prove_the_ask_are_refused_at_their_reason() {
    let log = LogCapture::start("doorward=info");
    let s = scenario(
        &route("admin", "/admin", &format!("acr = [\"{MFA}\"]\nmax_age = \"15m\"")),
        "",
    )
    .await;

    // A step-up the OP answers with the weaker acr: refused, and the
    // session stays as it was.
    let mut alice = s.logged_in("alice", "/home").await;
    let session = session_value(&alice);
    set_controls(&s.idp, "alice", json!({"_acr": PWD})).await;
    let before = s.upstream.requests().len();
    let flow = walk(&mut alice, &s.url("/admin/x"), "alice", &s).await;
    assert_eq!(flow.prompts, ["login"], "the OP was asked and logged her in");
    assert_eq!(flow.last.status, 401, "{}", flow.last.body);
    assert!(flow.last.body.contains("Sign-in failed"), "{}", flow.last.body);
    assert!(!flow.last.body.contains(PWD), "the page keeps the reason to the log");
    assert_eq!(s.upstream.requests().len(), before, "nothing was forwarded");
    assert_eq!(session_value(&alice), session);
    assert!(flow.session_cookies_set.is_empty());
    assert_eq!(alice.get(&s.url("/home")).await.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-acr"), Some(PWD));
    assert_eq!(alice.get(&s.url("/admin/x")).await.status, 302, "still not raised");

    // Logins with no session before: each refused, no session made.
    for (controls, reason) in [
        (json!({"_auth_age": 3600}), "s old; max_age is 900 s"),
        (
            json!({"_no_auth_time": true}),
            "the login carries no auth_time though max_age was asked for",
        ),
    ] {
        set_controls(&s.idp, "bob", controls.clone()).await;
        let mut bob = Browser::default();
        let flow = walk(&mut bob, &s.url("/admin/y"), "bob", &s).await;
        assert_eq!(flow.last.status, 401, "{controls}: {}", flow.last.body);
        assert!(flow.last.body.contains("Sign-in failed"), "{}", flow.last.body);
        assert!(bob.cookie(SESSION_COOKIE).is_none(), "{controls}: no session");
        let logged = log.text();
        assert!(
            logged.lines().any(
                |l| l.contains("the login of `bob` at `test-idp` does not prove what was asked") && l.contains(reason)
            ),
            "{controls}: the log does not say `{reason}`:\n{logged}"
        );
    }
    let logged = log.text();
    assert!(
        logged.lines().any(
            |l| l.contains("the login of `alice` at `test-idp` does not prove what was asked")
                && l.contains(&format!(
                    "the login's acr `{PWD}` is not one of those asked for (`{MFA}`)"
                ))
        ),
        "the log does not name the weaker acr:\n{logged}"
    );
    assert_eq!(s.upstream.requests().len(), before + 1, "only alice's /home");
}

#[tokio::test]
async fn a_step_up_that_comes_back_as_another_user_is_refused() {
    let log = LogCapture::start("doorward=info");
    let s = scenario(&route("admin", "/admin", &format!("acr = [\"{MFA}\"]")), "").await;
    let mut alice = s.logged_in("alice", "/home").await;
    let session = session_value(&alice);

    // At the step-up's login form, someone else logs in (bob, mfa). The
    // browser comes to the OP without its OP session: over that session
    // oidc-provider would end alice's OP session first, and its
    // back-channel logout would end her doorward session too (after which
    // the login is an ordinary one). So the refusal here is doorward's own.
    alice
        .cookies
        .retain(|c| !(c.name.starts_with("_session") || c.name.starts_with("_interaction")));
    let flow = walk(&mut alice, &s.url("/admin/x"), "bob", &s).await;
    assert_eq!(flow.prompts.first().map(String::as_str), Some("login"));
    assert_eq!(flow.last.status, 401, "{}", flow.last.body);
    assert!(flow.last.body.contains("Sign-in failed"), "{}", flow.last.body);
    let logged = log.text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("the step-up of the session of `alice` came back as another user (`bob`)")),
        "{logged}"
    );

    // Alice's session is hers, unchanged and not raised.
    assert!(flow.session_cookies_set.is_empty(), "{:?}", flow.session_cookies_set);
    assert_eq!(session_value(&alice), session);
    assert_eq!(alice.get(&s.url("/home")).await.status, 200);
    let seen = s.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-acr"), Some(PWD));
    assert_eq!(alice.get(&s.url("/admin/x")).await.status, 302);
}

#[tokio::test]
async fn bearer_tokens_and_forward_auth_get_the_rfc_9470_challenge() {
    let s = scenario(
        &route(
            "api",
            "/api",
            &format!("bearer = true\nacr = [\"{MFA}\"]\nmax_age = \"15m\""),
        ),
        "bearer = true",
    )
    .await;
    let weak = api_client_tokens(&s.idp, "alice").await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    set_controls(&s.idp, "bob", json!({"_acr": MFA})).await;
    let strong = api_client_tokens(&s.idp, "bob").await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();

    // The weak token is a good token: the plain route takes it.
    let page = api_call(&s, "/data", &weak).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-acr"), Some(PWD));

    let before = s.upstream.requests().len();
    let page = api_call(&s, "/api/data", &weak).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.header("www-authenticate"), Some(CHALLENGE));
    assert_eq!(s.upstream.requests().len(), before, "nothing was forwarded");

    let page = api_call(&s, "/api/data", &strong).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = s.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(seen.header("x-forwarded-acr"), Some(MFA));
    assert_eq!(seen.header("x-forwarded-amr"), Some("pwd,otp"));

    // Forward-auth judges a weak browser session the same way.
    let alice = s.logged_in("alice", "/home").await;
    let cookie = format!("{SESSION_COOKIE}={}", session_value(&alice));
    let headers = [("cookie", cookie.as_str()), ("accept", "application/json")];
    for (route, status) in [("app", 200), ("api", 401)] {
        let url = Url::parse(&s.url(&format!("/_doorward/auth?route={route}"))).expect("url");
        let page = raw_request("GET", &url, &headers, bytes::Bytes::new()).await;
        assert_eq!(page.status, status, "{route}: {}", page.body);
        if status == 401 {
            assert_eq!(page.header("www-authenticate"), Some(CHALLENGE));
        }
    }
    // A browser on the route itself is sent to step up instead.
    let url = Url::parse(&s.url("/api/data")).expect("url");
    let page = raw_request("GET", &url, &[("cookie", cookie.as_str())], bytes::Bytes::new()).await;
    assert_eq!(page.status, 302, "{}", page.body);
}

#[tokio::test]
async fn clients_cannot_set_the_assurance_headers() {
    let s = scenario("", "").await;
    let spoofed: Vec<(String, String)> = vec![
        ("X-Forwarded-Acr".into(), MFA.into()),
        ("x_forwarded_acr".into(), MFA.into()),
        ("X-Forwarded-Amr".into(), "hwk".into()),
        ("X-FORWARDED-AMR".into(), "hwk".into()),
    ];
    let values = |seen: &crate::support::Seen, name: &str| -> Vec<String> {
        seen.headers_folding_to(name).iter().map(|(_, v)| v.clone()).collect()
    };

    // A logged-in browser: the upstream hears the login's own acr and amr.
    let mut alice = s.logged_in("alice", "/home").await;
    alice.headers = spoofed.clone();
    let page = alice.get(&s.url("/home")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = s.upstream.last();
    assert_eq!(values(&seen, "x-forwarded-acr"), [PWD]);
    assert_eq!(values(&seen, "x-forwarded-amr"), ["pwd"]);

    // Nobody logged in, on a public path: the upstream hears none.
    let mut anonymous = Browser {
        headers: spoofed,
        ..Browser::default()
    };
    let page = anonymous.get(&s.url("/public/page")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/public/page");
    assert!(values(&seen, "x-forwarded-acr").is_empty(), "{:?}", seen.headers);
    assert!(values(&seen, "x-forwarded-amr").is_empty(), "{:?}", seen.headers);
}

#[tokio::test]
async fn a_step_up_on_one_replica_raises_the_session_on_the_other_at_once() {
    let pg = crate::postgres::TestPostgres::shared();
    let pair = crate::replicas::Pair::start(
        pg,
        Options {
            idp_env: vec![("OIDC_ACR_VALUES", ACR_VALUES)],
            extra: route("admin", "/admin", &format!("acr = [\"{MFA}\"]")),
            ..Options::default()
        },
    )
    .await;
    let s = &pair.s;
    let mut alice = s.logged_in("alice", "/home").await;
    // Replica B caches the weaker session and sends it to step up.
    assert_eq!(alice.get(&pair.on_b("/home")).await.status, 200);
    let page = alice.get(&pair.on_b("/admin/b")).await;
    assert_eq!(page.status, 302, "{}", page.body);

    // The step-up happens on replica A.
    let page = alice.get(&s.url("/admin/a")).await;
    let location = s.url(page.header("location").expect("sent to step up"));
    let flow = walk(&mut alice, &location, "alice", s).await;
    assert_eq!(flow.last.status, 200, "{}: {}", flow.last.url, flow.last.body);

    // B admits the raised session within a second (the store's notice).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let page = alice.get(&pair.on_b("/admin/b")).await;
        if page.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica B still refuses the raised session: {}",
            page.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(s.upstream.last().header("x-forwarded-acr"), Some(MFA));
}
