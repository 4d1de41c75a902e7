//! SAML 2.0 login against a real IdP (pysaml2 on loopback): what the
//! upstream receives, single logout both ways, replay and unsolicited
//! responses through doorward, and OIDC and SAML side by side.

use serde_json::json;
use tokio::net::TcpListener;

use crate::idp::{raw_request, Browser};
use crate::saml_peer::{doorward_sp, post_to_acs, saml_login, sign_in_at_idp, users, SamlIdp};
use crate::scenario::SESSION_KEY;
use crate::support::{Proxy, Upstream};

/// doorward in front of an upstream, logging in at a real SAML IdP.
pub struct SamlScenario {
    pub idp: SamlIdp,
    pub upstream: Upstream,
    pub proxy: Option<Proxy>,
    pub base: String,
    pub _store: tempfile::TempDir,
    pub config: String,
}

impl SamlScenario {
    /// `provider`: extra lines in the SAML `[[provider]]`; `extra`: TOML
    /// after the route.
    pub async fn start(provider: &str, extra: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind doorward");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let idp = SamlIdp::start(&json!([doorward_sp(&base)]), &users(), &[]);
        let upstream = Upstream::start().await;
        let store = tempfile::tempdir().expect("store dir");
        let config = format!(
            r#"
[server]
public_url = "{base}"
[log]
level = "warn"
[store]
url = "sqlite://{store}/doorward.db"
[session]
keys = ["{SESSION_KEY}"]
[identity.groups]
claim = "memberOf"
[[provider]]
name = "corp-saml"
kind = "saml"
display_name = "Corp SSO"
idp_metadata_url = "{metadata}"
{provider}
[[route]]
name = "app"
upstream = "{upstream}"
public = ["/public/"]
[[route]]
name = "entra-style"
path_prefix = "/entra"
upstream = "{upstream}"
[route.identity.groups]
claim = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
{extra}
"#,
            store = store.path().display(),
            metadata = idp.metadata_url,
            upstream = upstream.url(),
        );
        let proxy = Proxy::start_on(&config, listener).await;
        let scenario = Self {
            idp,
            upstream,
            proxy: Some(proxy),
            base,
            _store: store,
            config,
        };
        scenario.wait_ready().await;
        scenario
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// doorward reads the IdP's metadata in the background at start.
    async fn wait_ready(&self) {
        for _ in 0..100 {
            let page = Browser::default().get(&self.url("/_doorward/readyz")).await;
            if page.body.contains("metadata loaded") && !page.body.contains("not fetched") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("doorward never loaded the SAML IdP's metadata");
    }

    /// Stops doorward and starts it again on the same port and store.
    pub async fn restart(&mut self) {
        drop(self.proxy.take());
        let addr = self.base.trim_start_matches("http://").to_string();
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(&addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("rebind doorward's port");
        self.proxy = Some(Proxy::start_on(&self.config, listener).await);
        self.wait_ready().await;
    }
}

#[tokio::test]
async fn a_saml_login_reaches_the_upstream_with_mapped_identity() {
    let s = SamlScenario::start("", "").await;
    let mut alice = Browser::default();
    let page = saml_login(&mut alice, &s.url("/dashboards/7?tab=x"), "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.url.as_str(),
        s.url("/dashboards/7?tab=x"),
        "back where the user started"
    );
    let seen = s.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    assert_eq!(
        seen.header("x-forwarded-groups"),
        Some("engineers,staff"),
        "memberOf, multi-valued"
    );
    assert_eq!(seen.header("x-forwarded-idp"), Some("corp-saml"));
    let assertion = seen.header("x-doorward-assertion").expect("assertion");
    let payload = assertion.split('.').nth(1).expect("payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["idp"], "corp-saml");
    assert_eq!(claims["idp_iss"], s.idp.entity_id.as_str());
    assert_eq!(claims["sub"], "alice@example.com", "the NameID");

    // The same user on a route that reads Entra's groups claim URI.
    let page = alice.get(&s.url("/entra/x")).await;
    assert_eq!(page.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-groups"), Some("g-1,g-2"));

    // bob's mail comes as an OID-named attribute with FriendlyName "mail".
    let mut bob = Browser::default();
    let page = saml_login(&mut bob, &s.url("/"), "bob").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("bob@example.com"));
    assert_eq!(s.upstream.last().header("x-forwarded-groups"), Some("Marketing%20Team"));
}

#[tokio::test]
async fn the_sp_metadata_describes_doorward_for_the_idp_admin() {
    let s = SamlScenario::start("", "").await;
    let page = Browser::default().get(&s.url("/_doorward/saml/metadata")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("application/samlmetadata+xml"));
    assert!(page
        .body
        .contains(&format!("entityID=\"{}/_doorward/saml/metadata\"", s.base)));
    assert!(page
        .body
        .contains(&format!("Location=\"{}/_doorward/saml/acs\"", s.base)));
    // The IdP takes it as is.
    s.idp.add_sp_xml(&page.body).await;
}

#[tokio::test]
async fn a_replayed_response_is_refused_also_after_a_restart() {
    let mut s = SamlScenario::start("", "").await;
    let mut browser = Browser::default();
    let start = browser.get(&s.url("/_doorward/login?rd=/x")).await;
    let posted = sign_in_at_idp(&mut browser, &start.location().expect("to the IdP"), "alice").await;
    let first = post_to_acs(&mut browser, &posted).await;
    assert_eq!(first.status, 302, "{}", first.body);
    // The same response again, by a browser holding the same login cookie
    // (an attacker who captured both): refused.
    let mut thief = Browser {
        cookies: browser.cookies.clone(),
        ..Browser::default()
    };
    let again = post_to_acs(&mut thief, &posted).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("Sign-in failed"));
    s.restart().await;
    let after_restart = post_to_acs(&mut thief, &posted).await;
    assert_eq!(after_restart.status, 401, "the replay marker is durable");
}

#[tokio::test]
async fn unsolicited_responses_are_refused_unless_allowed() {
    let s = SamlScenario::start("", "").await;
    let sp = format!("{}/_doorward/saml/metadata", s.base);
    let posted = s.idp.unsolicited("alice", &sp, Some("/after")).await;
    let page = post_to_acs(&mut Browser::default(), &posted).await;
    assert_eq!(page.status, 401, "{}", page.body);
    drop(s);

    let s = SamlScenario::start("allow_unsolicited = true", "").await;
    let sp = format!("{}/_doorward/saml/metadata", s.base);
    let posted = s.idp.unsolicited("alice", &sp, Some("/after")).await;
    let mut browser = Browser::default();
    let page = post_to_acs(&mut browser, &posted).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.header("location"),
        Some("/after"),
        "a safe RelayState is the target"
    );
    let landed = browser.follow(page).await;
    assert_eq!(landed.status, 200);
    assert_eq!(s.upstream.last().header("x-forwarded-user"), Some("alice@example.com"));
    // An unsafe RelayState is not followed.
    let posted = s.idp.unsolicited("alice", &sp, Some("https://evil.example/")).await;
    let page = post_to_acs(&mut Browser::default(), &posted).await;
    assert_eq!(page.header("location"), Some("/"));
}

#[tokio::test]
async fn sp_initiated_logout_ends_the_session_here_and_at_the_idp() {
    let s = SamlScenario::start("", "").await;
    let mut alice = Browser::default();
    saml_login(&mut alice, &s.url("/"), "alice").await;
    let confirm = alice.get(&s.url("/_doorward/logout")).await;
    let form = crate::idp::Form::parse(&confirm.body).expect("logout form");
    let action = confirm.url.join(&form.action).expect("action");
    let to_idp = alice.request("POST", &action, Some(&form.inputs)).await;
    assert_eq!(to_idp.status, 303, "{}", to_idp.body);
    let slo = to_idp.location().expect("to the IdP");
    assert!(
        slo.as_str().starts_with(&format!("{}/slo?SAMLRequest=", s.idp.base)),
        "{slo}"
    );
    // The IdP ends its session and sends the browser back with a response.
    let back = alice.request("GET", &slo, None).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let done = alice.follow(back).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.url.path().ends_with("/_doorward/logged-out"), "{}", done.url);
    let events = s.idp.events().await;
    assert!(
        events["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "logout_request" && e["signature"] != "invalid"),
        "{events}"
    );
    let again = alice.get(&s.url("/")).await;
    assert_eq!(again.status, 302, "signed out here");
}

#[tokio::test]
async fn idp_initiated_logout_ends_the_session_for_both_bindings() {
    for binding in ["redirect", "post"] {
        let s = SamlScenario::start("", "").await;
        let mut alice = Browser::default();
        saml_login(&mut alice, &s.url("/"), "alice").await;
        assert_eq!(alice.get(&s.url("/")).await.status, 200);

        let requests = s.idp.logout("alice", binding).await;
        let request = &requests["requests"][0];
        let url = url::Url::parse(request["url"].as_str().expect("url")).expect("url");
        // Delivered without doorward's cookie: the session is found by its
        // NameID and SessionIndex, server-side.
        let answer = if binding == "redirect" {
            raw_request("GET", &url, &[], bytes::Bytes::new()).await
        } else {
            let fields: Vec<(String, String)> = request["fields"]
                .as_object()
                .expect("fields")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            Browser::default().request("POST", &url, Some(&fields)).await
        };
        assert_eq!(answer.status, 302, "{binding}: {}", answer.body);
        let response = answer.location().expect("a LogoutResponse to the IdP");
        assert!(response.as_str().contains("SAMLResponse="), "{response}");
        let delivered = raw_request("GET", &response, &[], bytes::Bytes::new()).await;
        assert_eq!(
            delivered.status, 200,
            "{binding}: the IdP accepts the answer: {}",
            delivered.body
        );
        let events = s.idp.events().await;
        assert!(
            events["events"]
                .as_array()
                .expect("events")
                .iter()
                .any(|e| e["type"] == "logout_response" && e["ok"] == true),
            "{binding}: {events}"
        );
        assert_eq!(alice.get(&s.url("/")).await.status, 302, "{binding}: the session ended");
    }
}

#[tokio::test]
async fn oidc_and_saml_providers_side_by_side_behind_the_chooser() {
    // An OIDC provider next to the SAML one; a route pinned to SAML.
    let oidc = crate::scenario::Scenario::start(crate::scenario::Options::default()).await;
    let extra = format!(
        r#"[[provider]]
name = "oidc-idp"
kind = "oidc"
display_name = "Corp OIDC"
issuer = "{issuer}"
client_id = "doorward"
client_secret = "{secret}"
[[route]]
name = "saml-only"
path_prefix = "/saml-only"
upstream = "http://127.0.0.1:9"
provider = "corp-saml"
"#,
        issuer = oidc.idp.issuer,
        secret = crate::idp::CLIENT_SECRET,
    );
    let s = SamlScenario::start("", &extra).await;
    let mut browser = Browser::default();
    let chooser = browser.get(&s.url("/_doorward/login?rd=/x")).await;
    assert_eq!(chooser.status, 200);
    assert!(
        chooser.body.contains("Corp SSO") && chooser.body.contains("Corp OIDC"),
        "{}",
        chooser.body
    );
    // Choosing SAML logs in through the SAML IdP.
    let page = saml_login(
        &mut browser,
        &s.url("/_doorward/login?provider=corp-saml&rd=/y"),
        "alice",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(s.upstream.last().header("x-forwarded-idp"), Some("corp-saml"));
    // The pinned route sends an unauthenticated browser to the SAML IdP.
    let pinned = Browser::default().get(&s.url("/saml-only/a")).await;
    assert!(
        pinned
            .header("location")
            .is_some_and(|l| l.contains("provider=corp-saml")),
        "{:?}",
        pinned.headers
    );
}
