//! The scenario builder for login tests: a real OpenID provider (node
//! oidc-provider on loopback), a real upstream and doorward in-process on a
//! port of its own, with the SQLite store in a temporary directory.
//! Everything stops when the scenario drops.
#![allow(dead_code)]

use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::idp::{Browser, Idp, Page, CLIENT_SECRET};
use crate::support::{Proxy, Upstream};
use doorward::clock::Clock;

pub const SESSION_KEY: &str = "test-session-key-0123456789abcdef0123456789";
/// The API the test IdP issues JWT access tokens for (to `api-*` clients).
pub const API_RESOURCE: &str = "urn:doorward:test-api";

/// doorward in front of an upstream, logging in at a real IdP.
pub struct Scenario {
    pub idp: Idp,
    pub upstream: Upstream,
    /// doorward itself, stopped when the scenario drops.
    pub _proxy: Proxy,
    pub base: String,
    /// Holds the SQLite file for the scenario's life.
    pub _store: tempfile::TempDir,
    pub config: String,
    /// doorward's clock (the system clock unless the options gave one).
    pub clock: Clock,
}

#[derive(Default)]
pub struct Options {
    pub idp_env: Vec<(&'static str, &'static str)>,
    /// The issuer the IdP announces instead of its own address (a fault
    /// injector relaying to it; see `Idp::listen`).
    pub idp_issuer: Option<String>,
    /// Extra TOML appended after the route (`@ISSUER@` becomes the IdP's
    /// issuer, `@UPSTREAM@` the upstream's URL).
    pub extra: String,
    /// Extra lines inside `[server]`.
    pub server: String,
    /// The `[log] level` filter (default `warn`).
    pub log_level: Option<String>,
    /// Extra lines inside `[session]`.
    pub session: String,
    /// Extra lines inside `[headers]`.
    pub headers: String,
    /// Extra lines inside `[[provider]]`.
    pub provider: String,
    /// The `[[provider]]`'s client authentication lines instead of
    /// `client_secret = ...` (e.g. private_key_jwt's).
    pub client_auth: Option<String>,
    /// Fields merged into doorward's client registration at the IdP.
    pub idp_client: Option<Value>,
    /// Extra lines inside the `app` `[[route]]`.
    pub route: String,
    /// The `[store]` table's lines (default: SQLite in a temp dir).
    pub store: Option<String>,
    pub backchannel: Option<String>,
    /// A clock for doorward (e.g. `Clock::manual_from_now()`), so expiry
    /// is tested by moving time instead of sleeping.
    pub clock: Option<Clock>,
}

impl Scenario {
    pub async fn start(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind doorward");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let backchannel = options
            .backchannel
            .clone()
            .unwrap_or_else(|| format!("{base}/_doorward/backchannel-logout"));
        let mut client = Idp::doorward_client(&base, &backchannel);
        if let (Some(Value::Object(fields)), Value::Object(client)) = (&options.idp_client, &mut client) {
            client.extend(fields.clone());
        }
        let clients = json!([client, Idp::api_client()]);
        let mut idp_env = vec![("OIDC_API_RESOURCE", API_RESOURCE)];
        idp_env.extend(options.idp_env.iter().copied());
        if let Some(issuer) = &options.idp_issuer {
            idp_env.push(("OIDC_ISSUER", issuer));
        }
        let idp = Idp::start(&clients, &Idp::accounts(), &idp_env);
        let upstream = Upstream::start().await;
        let store = tempfile::tempdir().expect("store dir");
        let config = format!(
            r#"
[server]
public_url = "{base}"
{server}
[log]
level = "{log_level}"
[store]
{store_lines}
[session]
keys = ["{SESSION_KEY}"]
{session}
[headers]
{headers}
[[provider]]
name = "test-idp"
kind = "oidc"
issuer = "{issuer}"
client_id = "doorward"
{client_auth}
scopes = ["openid", "email", "profile", "groups"]
bearer_audiences = ["{API_RESOURCE}"]
{provider}
[[route]]
name = "app"
upstream = "{upstream}"
public = ["/public/"]
{route}
{extra}
"#,
            server = options.server,
            log_level = options.log_level.as_deref().unwrap_or("warn"),
            store_lines = options
                .store
                .clone()
                .unwrap_or_else(|| format!("url = \"sqlite://{}/doorward.db\"", store.path().display())),
            session = options.session,
            headers = options.headers,
            issuer = idp.issuer,
            provider = options.provider,
            client_auth = options
                .client_auth
                .clone()
                .unwrap_or_else(|| format!("client_secret = \"{CLIENT_SECRET}\"")),
            route = options.route,
            upstream = upstream.url(),
            extra = options
                .extra
                .replace("@ISSUER@", &idp.issuer)
                .replace("@UPSTREAM@", &upstream.url()),
        );
        let clock = options.clock.unwrap_or_default();
        let proxy = Proxy::start_with(&config, listener, clock.clone()).await;
        Self {
            idp,
            upstream,
            _proxy: proxy,
            base,
            _store: store,
            config,
            clock,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The SQLite file doorward keeps its sessions in.
    pub fn store_path(&self) -> std::path::PathBuf {
        self._store.path().join("doorward.db")
    }

    /// A browser logged in as `user`, having landed on `path`.
    pub async fn logged_in(&self, user: &str, path: &str) -> Browser {
        let mut browser = Browser::default();
        let page = browser.login(&self.url(path), user, &self.idp).await;
        assert_eq!(
            page.status, 200,
            "login as {user} ended at {} with {}",
            page.url, page.body
        );
        browser
    }
}

/// Runs the code flow for `api-client` directly at `idp` and returns its
/// token response (for bearer-token tests).
pub async fn api_client_tokens(idp: &Idp, user: &str) -> Value {
    use base64::Engine;
    use sha2::Digest;
    let verifier = "a-pkce-verifier-that-is-long-enough-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let auth = format!(
        "{}/auth?client_id=api-client&response_type=code&scope=openid%20email%20profile%20groups%20api%3Aread\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=st4te12345&nonce=n0nce&code_challenge={challenge}\
         &code_challenge_method=S256&resource=urn%3Adoorward%3Atest-api",
        idp.issuer
    );
    let mut browser = Browser::default();
    let mut page = browser.get(&auth).await;
    // Follow until the IdP redirects to the (unreachable) client callback.
    for _ in 0..12 {
        if let Some(next) = page.location() {
            if next.as_str().starts_with("http://127.0.0.1:9/") {
                let code = next
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
                    .expect("code");
                let token_url = url::Url::parse(&format!("{}/token", idp.issuer)).expect("url");
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("api-client:{CLIENT_SECRET}"));
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "authorization_code")
                    .append_pair("code", &code)
                    .append_pair("redirect_uri", "http://127.0.0.1:9/cb")
                    .append_pair("code_verifier", verifier)
                    .finish();
                let auth_header = format!("Basic {basic}");
                let response = crate::idp::raw_request(
                    "POST",
                    &token_url,
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("authorization", &auth_header),
                    ],
                    body.into(),
                )
                .await;
                assert_eq!(response.status, 200, "{}", response.body);
                return response.json();
            }
            page = browser.request("GET", &next, None).await;
        } else if page.body.contains("<form") {
            let form = crate::idp::Form::parse(&page.body).expect("form");
            let fields: Vec<(String, String)> = form
                .inputs
                .into_iter()
                .map(|(k, v)| if k == "login" { (k, user.to_string()) } else { (k, v) })
                .collect();
            let action = page.url.join(&form.action).expect("action");
            page = browser.request("POST", &action, Some(&fields)).await;
        } else {
            panic!("stuck at {}: {}", page.url, page.body);
        }
    }
    panic!("no code after 12 steps");
}

/// `GET path` with `Authorization: Bearer <token>`, as an API client.
pub async fn api_call(s: &Scenario, path: &str, token: &str) -> Page {
    let url = url::Url::parse(&s.url(path)).expect("url");
    let auth = format!("Bearer {token}");
    crate::idp::raw_request(
        "GET",
        &url,
        &[("authorization", &auth), ("accept", "application/json")],
        bytes::Bytes::new(),
    )
    .await
}
