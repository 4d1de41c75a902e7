//! Step-up at a real SAML IdP (pysaml2): a route that asks for a stronger
//! authentication context class, or a recent login, sends a session made
//! with a password to log in again at its own provider; the AuthnRequest
//! asks for the class (RequestedAuthnContext) or a fresh login
//! (ForceAuthn); what the IdP answers is checked before the session is
//! raised, and the same session (the same cookie) is raised in place.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use url::Url;

use crate::idp::{Browser, Page};
use crate::saml::SamlScenario;
use crate::saml_peer::{post_to_acs, saml_login, sign_in_at_idp, users};
use crate::support::{LogCapture, Upstream};

const X509: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509";
const PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
const SESSION_COOKIE: &str = "doorward";

/// Held by the tests that read doorward's log: a capture is per thread,
/// and a call site's interest is decided for every thread at once.
static LOG_READERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// doorward at the SAML IdP with two assurance routes on their own
/// upstream: `/strong` asks for the X509 class, `/fresh` for a login at
/// most a minute old. alice may sign in with a password or a certificate.
struct StepUp {
    s: SamlScenario,
    guarded: Upstream,
}

impl StepUp {
    async fn start() -> Self {
        let guarded = Upstream::start().await;
        let routes = format!(
            r#"
[[route]]
name = "strong"
path_prefix = "/strong"
upstream = "{upstream}"
acr = ["{X509}"]
[[route]]
name = "fresh"
path_prefix = "/fresh"
upstream = "{upstream}"
max_age = "1m"
"#,
            upstream = guarded.url(),
        );
        let s = SamlScenario::start("", &routes).await;
        let mut alice = users()["alice"].clone();
        alice["authn_classes"] = json!([PASSWORD, X509]);
        s.idp.set_user("alice", &alice).await;
        Self { s, guarded }
    }

    /// alice with a session from a plain (password) login.
    async fn alice(&self) -> Browser {
        let mut browser = Browser::default();
        let page = saml_login(&mut browser, &self.s.url("/"), "alice").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(browser.cookie(SESSION_COOKIE).is_some(), "a session");
        browser
    }

    /// `path` on a step-up route: doorward's redirect to its login for
    /// that route (asserted), followed to the IdP's SSO URL.
    async fn to_idp(&self, browser: &mut Browser, path: &str, route: &str) -> Url {
        let page = browser.get(&self.s.url(path)).await;
        assert_eq!(page.status, 302, "{path} sends the session to step up: {}", page.body);
        let login = page.location().expect("a redirect");
        assert_eq!(login.path(), "/_doorward/login");
        let query: Vec<(String, String)> = login.query_pairs().into_owned().collect();
        for (key, value) in [("rd", path), ("provider", "corp-saml"), ("route", route)] {
            assert!(
                query.iter().any(|(k, v)| k == key && v == value),
                "{key}={value} in {login}"
            );
        }
        let page = browser.request("GET", &login, None).await;
        let idp = page.location().expect("a redirect to the IdP");
        assert!(idp.as_str().starts_with(&self.s.idp.sso_url), "{idp}");
        idp
    }

    /// The last AuthnRequest the IdP received.
    async fn last_request(&self) -> Value {
        let events = self.s.idp.events().await;
        events["events"]
            .as_array()
            .and_then(|all| all.iter().rev().find(|e| e["type"] == "authn_request"))
            .cloned()
            .expect("the IdP received an AuthnRequest")
    }
}

fn session(browser: &Browser) -> String {
    browser.cookie(SESSION_COOKIE).expect("a session cookie").value.clone()
}

fn sets_session_cookie(page: &Page) -> bool {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
}

/// Waits (with a deadline) until the captured log holds `needle`.
async fn logged(log: &LogCapture, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = log.text();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "doorward never logged {needle:?}; it logged:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The weak session is unchanged: the plain route admits it, the step-up
/// route still sends it to log in again.
async fn still_weak(t: &StepUp, browser: &mut Browser, cookie_before: &str) {
    assert_eq!(session(browser), cookie_before, "the session cookie is unchanged");
    let plain = browser.get(&t.s.url("/plain")).await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(t.s.upstream.last().header("x-forwarded-acr"), Some(PASSWORD));
    let strong = browser.get(&t.s.url("/strong/report")).await;
    assert_eq!(strong.status, 302, "still sent to step up: {}", strong.body);
}

#[tokio::test]
async fn a_step_up_asks_for_the_class_and_raises_the_same_session() {
    let t = StepUp::start().await;
    let mut alice = t.alice().await;
    let weak = session(&alice);
    assert_eq!(
        t.s.upstream.last().header("x-forwarded-acr"),
        Some(PASSWORD),
        "the plain login's class"
    );
    assert_eq!(
        alice.get(&t.s.url("/plain")).await.status,
        200,
        "a plain route admits it"
    );

    let idp = t.to_idp(&mut alice, "/strong/report", "strong").await;
    let posted = sign_in_at_idp(&mut alice, &idp, "alice").await;
    let asked = t.last_request().await;
    assert_eq!(
        asked["requested_authn_context"],
        json!({"comparison": "exact", "classes": [X509]}),
        "{asked}"
    );
    assert_ne!(asked["force_authn"], "true", "no max_age, no ForceAuthn: {asked}");

    let back = post_to_acs(&mut alice, &posted).await;
    assert_eq!(back.status, 302, "{}", back.body);
    assert!(!sets_session_cookie(&back), "the session is raised, not replaced");
    let page = alice.follow(back).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url.path(), "/strong/report");
    assert_eq!(session(&alice), weak, "the same session cookie");
    let seen = t.guarded.last();
    assert_eq!(seen.header("x-forwarded-acr"), Some(X509));
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    // The raised session keeps admitting the plain route too.
    assert_eq!(alice.get(&t.s.url("/plain")).await.status, 200);
    assert_eq!(t.s.upstream.last().header("x-forwarded-acr"), Some(X509));
}

#[tokio::test]
async fn a_weaker_class_from_the_idp_is_refused_and_the_session_stays_weak() {
    let _one_reader = LOG_READERS.lock().await;
    let log = LogCapture::start("doorward=info");
    let t = StepUp::start().await;
    let mut alice = t.alice().await;
    let weak = session(&alice);
    // The IdP answers with the password class whatever is asked.
    t.s.idp.set_options(&json!({"authn_context_class": PASSWORD})).await;

    let idp = t.to_idp(&mut alice, "/strong/report", "strong").await;
    let posted = sign_in_at_idp(&mut alice, &idp, "alice").await;
    let refused = post_to_acs(&mut alice, &posted).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("Sign-in failed"), "{}", refused.body);
    assert!(!sets_session_cookie(&refused));
    let text = logged(&log, "is not one of those asked for").await;
    assert!(
        text.contains(&format!("`{PASSWORD}`")),
        "the class answered is named: {text}"
    );
    still_weak(&t, &mut alice, &weak).await;
}

#[tokio::test]
async fn an_old_authentication_is_refused_on_a_max_age_route() {
    let _one_reader = LOG_READERS.lock().await;
    let log = LogCapture::start("doorward=info");
    let t = StepUp::start().await;
    let mut alice = t.alice().await;
    let weak = session(&alice);
    // The fresh route admits the login just made...
    let page = alice.get(&t.s.url("/fresh/x")).await;
    assert_eq!(
        page.status, 200,
        "a login of seconds ago is fresh enough: {}",
        page.body
    );
    // ...and the IdP now says every sign-in happened an hour ago.
    t.s.idp.set_options(&json!({"authn_instant_age": 3600})).await;

    // A step-up of the fresh route: ForceAuthn, answered with the old instant.
    let login = t.s.url("/_doorward/login?rd=/fresh/x&provider=corp-saml&route=fresh");
    let page = alice.get(&login).await;
    let idp = page.location().expect("a redirect to the IdP");
    let posted = sign_in_at_idp(&mut alice, &idp, "alice").await;
    let asked = t.last_request().await;
    assert_eq!(asked["force_authn"], "true", "max_age asks for a fresh login: {asked}");
    assert_eq!(
        asked["requested_authn_context"],
        Value::Null,
        "no classes asked: {asked}"
    );

    let refused = post_to_acs(&mut alice, &posted).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("Sign-in failed"), "{}", refused.body);
    let text = logged(&log, "max_age is 60 s").await;
    let line = text.lines().find(|l| l.contains("max_age is 60 s")).unwrap_or_default();
    let age: i64 = line
        .split("the login is ")
        .nth(1)
        .and_then(|rest| rest.split(" s old").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the login's age is named: {line}"));
    assert!((3590..3700).contains(&age), "about an hour old: {line}");
    assert_eq!(session(&alice), weak, "the session cookie is unchanged");
}
