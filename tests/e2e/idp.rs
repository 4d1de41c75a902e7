//! The real OpenID provider (node `oidc-provider`, tests/peers/oidc) and a
//! small cookie-keeping "browser" that logs in through it without a
//! browser: it follows redirects and submits the provider's forms.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use url::Url;

pub const CLIENT_SECRET: &str = "doorward-test-secret";

/// A running oidc-provider; killed on drop.
pub struct Idp {
    pub issuer: String,
    /// Where it listens: the issuer, unless `OIDC_ISSUER` names a relay.
    pub listen: String,
    child: Child,
}

impl Idp {
    /// Starts the provider with these clients and accounts (see the peer's
    /// README for the environment it reads).
    pub fn start(clients: &Value, accounts: &Value, env: &[(&str, &str)]) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules").exists(),
            "the OIDC test peer is not installed: run scripts/test.sh (it runs `npm ci --prefix {dir}`)"
        );
        let mut command = Command::new("node");
        command
            .arg(format!("{dir}/server.mjs"))
            .env("OIDC_CLIENTS", clients.to_string())
            .env("OIDC_ACCOUNTS", accounts.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start node (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read issuer line");
        let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("peer said {line:?}"));
        let issuer = parsed["issuer"].as_str().expect("issuer").to_string();
        let listen = parsed["listen"].as_str().unwrap_or(&issuer).to_string();
        Self { issuer, listen, child }
    }

    /// A client entry for doorward listening on `base` (http://127.0.0.1:PORT).
    pub fn doorward_client(base: &str, backchannel: &str) -> Value {
        json!({
            "client_id": "doorward",
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [format!("{base}/_doorward/callback")],
            "post_logout_redirect_uris": [format!("{base}/_doorward/logged-out")],
            "backchannel_logout_uri": backchannel,
            "backchannel_logout_session_required": true,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })
    }

    /// The API client bearer-token tests get their tokens with (see
    /// `scenario::api_client_tokens`).
    pub fn api_client() -> Value {
        json!({
            "client_id": "api-client", "client_secret": CLIENT_SECRET,
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        })
    }

    pub fn accounts() -> Value {
        json!({
            "alice": {"email": "alice@example.com", "email_verified": true, "name": "Alice",
                      "preferred_username": "alice", "groups": ["engineers", "staff"]},
            "bob": {"email": "bob@example.com", "email_verified": true, "name": "Bob",
                    "preferred_username": "bob", "groups": ["Marketing Team"]},
            "eve": {"email": "eve@elsewhere.test", "email_verified": false, "preferred_username": "eve",
                    "groups": []},
        })
    }

    pub async fn set_account(&self, id: &str, claims: &Value) {
        let url = Url::parse(&format!("{}/__test/accounts/{id}", self.issuer)).expect("url");
        let page = raw_request(
            "POST",
            &url,
            &[("content-type", "application/json")],
            claims.to_string().into(),
        )
        .await;
        assert_eq!(page.status, 200, "set account: {}", page.body);
    }

    pub async fn delete_account(&self, id: &str) {
        let url = Url::parse(&format!("{}/__test/accounts/{id}", self.issuer)).expect("url");
        let page = raw_request("DELETE", &url, &[], Bytes::new()).await;
        assert!(page.status < 300, "delete account: {}", page.body);
    }

    /// The `traceparent` headers the IdP was sent, oldest first, with the
    /// path of each call.
    pub async fn traceparents(&self) -> Vec<(String, String)> {
        let url = Url::parse(&format!("{}/__test/traceparents", self.issuer)).expect("url");
        let page = raw_request("GET", &url, &[], Bytes::new()).await;
        assert_eq!(page.status, 200, "traceparents: {}", page.body);
        page.json()
            .as_array()
            .expect("a list")
            .iter()
            .map(|seen| {
                let text = |key: &str| seen[key].as_str().expect(key).to_string();
                (text("path"), text("traceparent"))
            })
            .collect()
    }

    /// New signing keys at the IdP; the old ones are no longer published.
    /// Returns the new key ids.
    pub async fn rotate_keys(&self) -> Vec<String> {
        let url = Url::parse(&format!("{}/__test/rotate-keys", self.issuer)).expect("url");
        let page = raw_request("POST", &url, &[], Bytes::new()).await;
        assert_eq!(page.status, 200, "rotate keys: {}", page.body);
        page.json()["kids"]
            .as_array()
            .expect("kids")
            .iter()
            .map(|k| k.as_str().expect("kid").to_string())
            .collect()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response as the browser saw it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<Url> {
        let location = self.headers.get("location")?.to_str().ok()?;
        self.url.join(location).ok()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection.
pub async fn raw_request(method: &str, url: &Url, headers: &[(&str, &str)], body: Bytes) -> Page {
    let host = url.host_str().expect("host");
    let port = url.port_or_known_default().expect("port");
    let tcp = TcpStream::connect((host, port))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .header("host", format!("{host}:{port}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Full::new(body)).expect("request");
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Page {
        status: parts.status.as_u16(),
        url: url.clone(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct StoredCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub attributes: String,
}

/// Keeps cookies (by name and path, as browsers do: not by port) and
/// follows redirects.
#[derive(Default)]
pub struct Browser {
    pub cookies: Vec<StoredCookie>,
    pub headers: Vec<(String, String)>,
}

impl Browser {
    pub fn cookie(&self, name: &str) -> Option<&StoredCookie> {
        self.cookies.iter().find(|c| c.name == name)
    }

    pub fn cookie_named_like(&self, prefix: &str) -> Option<&StoredCookie> {
        self.cookies.iter().find(|c| c.name.starts_with(prefix))
    }

    pub fn set_cookie_value(&mut self, name: &str, value: &str) {
        if let Some(c) = self.cookies.iter_mut().find(|c| c.name == name) {
            c.value = value.to_string();
        }
    }

    fn cookie_header(&self, path: &str) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| path.starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store(&mut self, page: &Page) {
        for value in page.headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let mut path = "/".to_string();
            let mut delete = false;
            for attr in parts.clone() {
                let attr = attr.trim();
                let lower = attr.to_ascii_lowercase();
                if let Some(p) = attr.strip_prefix("Path=").or_else(|| attr.strip_prefix("path=")) {
                    path = p.to_string();
                } else if let Some(age) = lower.strip_prefix("max-age=") {
                    delete |= age.parse::<i64>().is_ok_and(|n| n <= 0);
                } else if lower.starts_with("expires=") {
                    delete |= lower.contains("1970");
                }
            }
            self.cookies.retain(|c| !(c.name == name && c.path == path));
            if !delete {
                self.cookies.push(StoredCookie {
                    name: name.to_string(),
                    value: value.to_string(),
                    path,
                    attributes: text.to_string(),
                });
            }
        }
    }

    pub async fn request(&mut self, method: &str, url: &Url, form: Option<&[(String, String)]>) -> Page {
        let mut headers: Vec<(String, String)> = self.headers.clone();
        if let Some(cookies) = self.cookie_header(url.path()) {
            headers.push(("cookie".into(), cookies));
        }
        let body = match form {
            Some(fields) => {
                headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
                let mut serializer = form_urlencoded::Serializer::new(String::new());
                for (k, v) in fields {
                    serializer.append_pair(k, v);
                }
                Bytes::from(serializer.finish())
            }
            None => Bytes::new(),
        };
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let page = raw_request(method, url, &borrowed, body).await;
        self.store(&page);
        page
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let url = Url::parse(url).expect("url");
        self.request("GET", &url, None).await
    }

    /// Follows redirects from `page` (at most 20).
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..20 {
            if !(300..400).contains(&page.status) {
                return page;
            }
            let Some(next) = page.location() else {
                return page;
            };
            page = self.request("GET", &next, None).await;
        }
        panic!("redirect loop ending at {}", page.url);
    }

    pub async fn navigate(&mut self, url: &str) -> Page {
        let page = self.get(url).await;
        self.follow(page).await
    }

    /// Submits the first form of `page`, filling `login`/`password` for
    /// `user` and adding `extra` fields, then follows redirects.
    pub async fn submit(&mut self, page: &Page, user: &str, extra: &[(&str, &str)]) -> Page {
        let form = Form::parse(&page.body).unwrap_or_else(|| panic!("no form on {}: {}", page.url, page.body));
        let mut fields = form.filled_for(user);
        for (k, v) in extra {
            fields.push((k.to_string(), v.to_string()));
        }
        let action = page.url.join(&form.action).expect("form action");
        let method = if form.method.eq_ignore_ascii_case("get") {
            "GET"
        } else {
            "POST"
        };
        let response = self.request(method, &action, Some(&fields)).await;
        self.follow(response).await
    }

    /// Starts at `url` on doorward and logs in as `user` at the IdP
    /// (login and consent forms), returning the page it lands on.
    pub async fn login(&mut self, url: &str, user: &str, idp: &Idp) -> Page {
        let mut page = self.navigate(url).await;
        for _ in 0..4 {
            let at_idp = page.url.as_str().starts_with(&idp.issuer);
            if !(at_idp && page.status == 200 && page.body.contains("<form")) {
                return page;
            }
            page = self.submit(&page, user, &[]).await;
        }
        page
    }
}

/// The first HTML form of a page: action, method and named inputs.
pub struct Form {
    pub action: String,
    pub method: String,
    pub inputs: Vec<(String, String)>,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&#x2F;", "/")
            .replace("&quot;", "\""),
    )
}

impl Form {
    /// The form's fields with `login`/`password` filled for `user`.
    pub fn filled_for(&self, user: &str) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .map(|(name, value)| match name.as_str() {
                "login" => (name.clone(), user.to_string()),
                "password" => (name.clone(), "any".to_string()),
                _ => (name.clone(), value.clone()),
            })
            .collect()
    }

    pub fn parse(html: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let end = html[start..].find("</form>").map_or(html.len(), |e| start + e);
        let form = &html[start..end];
        let tag_end = form.find('>')?;
        let tag = &form[..tag_end];
        let mut inputs = Vec::new();
        let mut rest = form;
        while let Some(i) = rest.find("<input") {
            let close = rest[i..].find('>').map_or(rest.len(), |c| i + c);
            let input = &rest[i..close];
            if let Some(name) = attribute(input, "name") {
                inputs.push((name, attribute(input, "value").unwrap_or_default()));
            }
            rest = &rest[close..];
        }
        Some(Self {
            action: attribute(tag, "action").unwrap_or_default(),
            method: attribute(tag, "method").unwrap_or_else(|| "post".into()),
            inputs,
        })
    }
}
