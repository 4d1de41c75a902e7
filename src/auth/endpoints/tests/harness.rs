//! The in-process test layer's builder: config text -> [`Config`] -> the
//! login machinery, with the constructors `serve` uses (`Auth::from_config`
//! over an in-memory store, doorward's pages, a signer with a key made now)
//! on a manual clock. No socket is opened and no IdP is asked: OIDC
//! providers fetch their metadata only when a login starts. The proxy's
//! tests assemble their `Gateway` on top of this.

use std::sync::Arc;

use http::request::Parts;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::json;

use crate::assertion::keys::SigningKey;
use crate::assertion::AssertionSigner;
use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::Config;
use crate::login::{LoginResult, Tokens};
use crate::metrics::Metrics;
use crate::respond::{Pages, Reply};

/// What every test config needs: a public URL, a session key and an
/// in-memory store. Tests add `[server]` keys after it and their
/// providers, identity and routes after those.
const SERVER: &str = r#"
[server]
public_url = "https://dw.test"
"#;

const SESSION_AND_STORE: &str = r#"
[session]
keys = ["0123456789abcdef0123456789abcdef-in-process"]
[store]
url = "sqlite::memory:"
"#;

/// One OpenID Connect provider (its metadata is never fetched here).
pub(crate) const CORP: &str = r#"
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"
"#;

/// When the manual clock starts.
pub(crate) const START: i64 = 1_700_000_000;

/// The login machinery built from a config, and what it was built with.
pub(crate) struct TestAuth {
    pub config: Config,
    pub auth: Arc<Auth>,
    pub signer: Arc<AssertionSigner>,
    pub pages: Arc<Pages>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

/// The route a config gets when it names none (a config needs one).
const ANY_ROUTE: &str = r#"
[[route]]
name = "app"
upstream = "http://127.0.0.1:9"
"#;

/// The basics with `server` lines in `[server]`, then `rest` (and a
/// catch-all route if it has none), parsed and checked as the config
/// loader does.
pub(crate) fn config(server: &str, rest: &str) -> Config {
    let route = if rest.contains("[[route]]") { "" } else { ANY_ROUTE };
    let text = format!("{SERVER}{server}\n{SESSION_AND_STORE}{rest}{route}");
    crate::config::parse_str(&text, "test.toml").unwrap_or_else(|e| panic!("test config: {e}"))
}

impl TestAuth {
    /// Builds from the basics and `rest`, which must configure a provider.
    pub(crate) async fn new(rest: &str) -> Self {
        Self::with_server("", rest).await
    }

    /// Like [`Self::new`], with `server` lines in `[server]`.
    pub(crate) async fn with_server(server: &str, rest: &str) -> Self {
        let config = config(server, rest);
        let clock = Clock::manual(START);
        // As `build::signer` does without configured keys.
        let signer = AssertionSigner::new(
            vec![SigningKey::generate()],
            "https://dw.test".into(),
            config.headers.assertion_ttl.0,
            &config.headers.assertion,
        )
        .map(Arc::new)
        .expect("signer");
        let pages = Arc::new(Pages::from_config(&config).expect("pages"));
        let metrics = Arc::new(Metrics::new());
        let auth = Auth::from_config(
            &config,
            Arc::clone(&signer),
            Arc::clone(&pages),
            metrics.auth().clone(),
            clock.clone(),
        )
        .await
        .expect("auth")
        .map(Arc::new)
        .expect("a provider is configured");
        Self {
            config,
            auth,
            signer,
            pages,
            metrics,
            clock,
        }
    }

    /// Stores a session for `sub` (with these groups) as a finished login
    /// would, and returns the `Cookie` header value that names it.
    pub(crate) async fn session(&self, sub: &str, groups: &[&str]) -> String {
        let (sealed, _) = self
            .auth
            .sessions
            .create(login_result(sub, groups), None)
            .await
            .expect("session stored");
        format!("{}={sealed}", self.auth.sessions.settings.cookie_name)
    }
}

/// What an OIDC login at `corp` would return for `sub`.
pub(crate) fn login_result(sub: &str, groups: &[&str]) -> LoginResult {
    let claims = json!({"sub": sub, "email": format!("{sub}@example.com"), "groups": groups});
    let merged = claims.as_object().cloned().unwrap_or_default();
    LoginResult {
        provider: "corp".into(),
        issuer: "https://idp.test".into(),
        subject: sub.into(),
        idp_session: None,
        logout_hint: None,
        idp_session_end: None,
        merged,
        claims: json!({ "merged": claims }),
        tokens: Tokens {
            access_token: None,
            refresh_token: None,
            id_token: None,
            expires_at: None,
        },
        authentication: Default::default(),
    }
}

/// A request head, as hyper would hand it over.
pub(crate) fn head(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request").into_parts().0
}

/// An empty request body.
pub(crate) fn empty() -> Empty<bytes::Bytes> {
    Empty::new()
}

/// A form body.
pub(crate) fn form(text: &str) -> Full<bytes::Bytes> {
    Full::new(bytes::Bytes::from(text.to_string()))
}

/// A response's header, as text ("" when absent).
pub(crate) fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A response's whole body, as text.
pub(crate) async fn text(reply: Reply) -> String {
    let bytes = reply.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}
