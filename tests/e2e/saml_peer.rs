//! The real SAML IdP (pysaml2, tests/peers/saml) and a headless login
//! through it: follow doorward's redirect to the IdP, submit its login
//! form, and take the signed SAMLResponse it would auto-post to the ACS.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, ChildStdin, Command, Stdio};

use bytes::Bytes;
use serde_json::{json, Value};
use url::Url;

use crate::idp::{raw_request, Browser, Form, Page};

/// A running pysaml2 IdP; killed on drop (and gone by itself if the test
/// process dies: it exits when its stdin closes).
pub struct SamlIdp {
    pub base: String,
    pub entity_id: String,
    pub metadata_url: String,
    pub sso_url: String,
    child: Child,
    _stdin: ChildStdin,
}

/// What the IdP would auto-post to the ACS.
#[derive(Debug, Clone)]
pub struct Posted {
    pub action: String,
    pub response: String,
    pub relay_state: Option<String>,
}

impl Posted {
    /// The Response XML.
    pub fn xml(&self) -> String {
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &self.response).expect("base64");
        String::from_utf8(raw).expect("utf-8")
    }

    /// The same post with other XML.
    pub fn with_xml(&self, xml: &str) -> Self {
        Self {
            response: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml),
            ..self.clone()
        }
    }
}

/// A doorward SP description for the peer: doorward at `base`.
pub fn doorward_sp(base: &str) -> Value {
    json!({
        "entity_id": format!("{base}/_doorward/saml/metadata"),
        "acs_url": format!("{base}/_doorward/saml/acs"),
        "slo_url": format!("{base}/_doorward/saml/slo"),
        "authn_requests_signed": false,
        "slo_bindings": ["redirect", "post"],
    })
}

/// alice (engineers, staff) and bob (Marketing Team), with their groups in
/// `memberOf` and in Entra's groups claim URI, and mail under its OID.
pub fn users() -> Value {
    json!({
        "alice": {"name_id": "alice@example.com", "name_id_format": "email", "attributes": {
            "mail": ["alice@example.com"],
            "uid": ["alice"],
            "memberOf": ["engineers", "staff"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["g-1", "g-2"]}},
        "bob": {"name_id": "bob@example.com", "name_id_format": "email", "attributes": {
            "urn:oid:0.9.2342.19200300.100.1.3": {"values": ["bob@example.com"], "friendly_name": "mail"},
            "memberOf": ["Marketing Team"]}},
    })
}

fn python() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
    assert!(
        std::path::Path::new(path).exists(),
        "the SAML test peer's venv is missing: run scripts/test.sh (it installs tests/peers/saml/requirements.txt)"
    );
    path.to_string()
}

impl SamlIdp {
    pub fn start(sps: &Value, users: &Value, env: &[(&str, &str)]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/saml/idp.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .env("SAML_SP_METADATA", sps.to_string())
            .env("SAML_USERS", users.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .expect("start the SAML peer (python3 and xmlsec1 installed?)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the peer's line");
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("SAML peer said {line:?}"));
        let field = |name: &str| info[name].as_str().expect("field").to_string();
        Self {
            base: field("base"),
            entity_id: field("entity_id"),
            metadata_url: field("metadata_url"),
            sso_url: field("sso_url"),
            child,
            _stdin: stdin,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Page {
        let url = Url::parse(&format!("{}{path}", self.base)).expect("url");
        let (headers, body) = match body {
            Some(body) => (
                vec![("content-type", "application/json"), ("accept", "application/json")],
                Bytes::from(body.to_string()),
            ),
            None => (vec![("accept", "application/json")], Bytes::new()),
        };
        raw_request(method, &url, &headers, body).await
    }

    pub async fn set_options(&self, options: &Value) {
        let page = self.admin("POST", "/__test/options", Some(options)).await;
        assert_eq!(page.status, 200, "options: {}", page.body);
    }

    pub async fn add_sp(&self, sp: &Value) {
        let page = self.admin("POST", "/__test/sps", Some(sp)).await;
        assert_eq!(page.status, 200, "add sp: {}", page.body);
    }

    /// Adds (or replaces) an SP from its metadata XML.
    pub async fn add_sp_xml(&self, metadata: &str) {
        let url = Url::parse(&format!("{}/__test/sps", self.base)).expect("url");
        let page = raw_request(
            "POST",
            &url,
            &[("content-type", "application/samlmetadata+xml")],
            Bytes::from(metadata.to_string()),
        )
        .await;
        assert_eq!(page.status, 200, "add sp: {}", page.body);
    }

    pub async fn set_user(&self, name: &str, user: &Value) {
        let page = self.admin("PUT", &format!("/__test/users/{name}"), Some(user)).await;
        assert!(page.status < 300, "set user: {}", page.body);
    }

    pub async fn events(&self) -> Value {
        self.admin("GET", "/__test/events", None).await.json()
    }

    /// An IdP-initiated login for `user` at SP `sp`.
    pub async fn unsolicited(&self, user: &str, sp: &str, relay_state: Option<&str>) -> Posted {
        let mut path = format!("/__test/unsolicited?user={user}&sp={}", urlencode(sp));
        if let Some(relay) = relay_state {
            path.push_str(&format!("&relay_state={}", urlencode(relay)));
        }
        posted(&self.admin("GET", &path, None).await)
    }

    /// IdP-initiated logout of `user`: the requests to deliver to the SPs.
    pub async fn logout(&self, user: &str, binding: &str) -> Value {
        let page = self
            .admin("POST", &format!("/__test/logout?user={user}&binding={binding}"), None)
            .await;
        assert_eq!(page.status, 200, "logout: {}", page.body);
        page.json()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The JSON form of the IdP's auto-post.
fn posted(page: &Page) -> Posted {
    assert_eq!(
        page.status, 200,
        "the IdP did not answer with a response: {}",
        page.body
    );
    let body = page.json();
    Posted {
        action: body["action"].as_str().expect("action").to_string(),
        response: body["fields"]["SAMLResponse"]
            .as_str()
            .expect("SAMLResponse")
            .to_string(),
        relay_state: body["fields"]["RelayState"].as_str().map(str::to_string),
    }
}

/// From doorward's redirect to the IdP: the login form, submitted as
/// `user`; returns what the IdP would post to the ACS (not posted yet).
pub async fn sign_in_at_idp(browser: &mut Browser, redirect_to_idp: &Url, user: &str) -> Posted {
    let form_page = browser.request("GET", redirect_to_idp, None).await;
    assert_eq!(form_page.status, 200, "the IdP's login form: {}", form_page.body);
    let form = Form::parse(&form_page.body).expect("a login form");
    let fields: Vec<(String, String)> = form
        .inputs
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "username" => (name, user.to_string()),
            "password" => (name, "any".to_string()),
            _ => (name, value),
        })
        .collect();
    let action = form_page.url.join(&form.action).expect("action");
    browser.headers.push(("accept".into(), "application/json".into()));
    let page = browser.request("POST", &action, Some(&fields)).await;
    browser.headers.retain(|(k, _)| k != "accept");
    posted(&page)
}

/// Posts the IdP's response to doorward's ACS, as the browser would.
pub async fn post_to_acs(browser: &mut Browser, posted: &Posted) -> Page {
    let mut fields = vec![("SAMLResponse".to_string(), posted.response.clone())];
    if let Some(relay) = &posted.relay_state {
        fields.push(("RelayState".to_string(), relay.clone()));
    }
    let url = Url::parse(&posted.action).expect("ACS url");
    browser.request("POST", &url, Some(&fields)).await
}

/// Starts at `url` on doorward, logs in at the SAML IdP as `user` and
/// follows doorward's redirect back: the page the user lands on.
pub async fn saml_login(browser: &mut Browser, url: &str, user: &str) -> Page {
    let mut page = browser.get(url).await;
    // doorward: 302 to /_doorward/login, then 302 to the IdP (or a chooser).
    for _ in 0..3 {
        match page.location() {
            Some(next) if next.path().ends_with("/sso") => {
                let posted = sign_in_at_idp(browser, &next, user).await;
                let back = post_to_acs(browser, &posted).await;
                return browser.follow(back).await;
            }
            Some(next) => page = browser.request("GET", &next, None).await,
            None => panic!("no way to the IdP from {}: {} {}", page.url, page.status, page.body),
        }
    }
    panic!("stuck before the IdP at {}", page.url)
}
