//! doorward's one TOML file: the typed schema with its defaults.
//!
//! Loading (with file:line errors) lives in [`load`], the checks that go past
//! types in [`validate`]. Nothing here touches the network or writes anything,
//! so `doorward check` and `doorward serve` share the same path.

pub mod admin;
pub mod audit;
mod check_providers;
mod check_scim;
pub mod identity;
pub mod issues;
pub mod load;
pub mod provider;
pub mod scim;
pub mod signals;
pub mod traces;
pub mod ui;
pub mod units;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

pub use load::{load_file, load_file_with, parse_str, parse_str_with, ConfigError, Problem};
pub use provider::{ClaimsSource, ClientAuth, OidcProviderConfig, ParMode, ProviderConfig, SamlProviderConfig};
pub use scim::{MatchOn, ScimConfig};
use units::{ByteSize, HumanDuration, SecretSource};
pub use validate::weakened;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub audit: audit::AuditConfig,
    #[serde(default)]
    pub traces: traces::TracesConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub headers: HeaderNames,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub identity: identity::IdentityConfig,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub scim: ScimConfig,
    #[serde(default)]
    pub ui: ui::UiConfig,
    #[serde(default)]
    pub admin: admin::AdminConfig,
    /// Shared-signals transmitters (SSF, CAEP, RISC).
    #[serde(default)]
    pub signals: Vec<signals::SignalsConfig>,
}

/// `[store]`: where sessions (and later the SCIM directory) live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created if missing) for one node, or
    /// `postgres://USER@HOST:PORT/DB[?sslmode=verify-full]` for several.
    pub url: String,
    /// The database password, when it is not in the URL.
    pub password: Option<SecretSource>,
    /// Connections in the PostgreSQL pool.
    pub max_connections: u32,
    /// Security warning: allows a PostgreSQL store off loopback without
    /// `sslmode=verify-full` (or `verify-ca`), so sessions and tokens may
    /// travel in the clear or to a server whose certificate is not checked.
    pub insecure_unverified_tls: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://doorward.db".into(),
            password: None,
            max_connections: 10,
            insecure_unverified_tls: false,
        }
    }
}

/// `[session]`: the session cookie and how long a login lasts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Base cookie name; `__Host-` is prefixed when the cookie is Secure
    /// and has no Domain.
    pub cookie_name: String,
    /// Share the cookie with subdomains (e.g. "example.com"). Unset: host-only.
    pub cookie_domain: Option<String>,
    /// Security warning: leaves `Secure` off doorward's cookies even when
    /// served over https, so they also travel over plain http. Cookies are
    /// Secure (and `__Host-`) by default whenever doorward is reached by https.
    pub insecure_cookie_not_secure: bool,
    /// Secrets of at least 32 bytes: the first seals new cookies and
    /// encrypts tokens, all of them open (rotation: prepend a new key).
    pub keys: Vec<SecretSource>,
    /// A session unused this long ends.
    pub idle_timeout: HumanDuration,
    /// A session ends this long after login, however active.
    pub absolute_timeout: HumanDuration,
    /// Refresh tokens this long before the access token expires.
    pub refresh_before: HumanDuration,
    /// Sessions kept in memory (each about 1 KiB); the rest load from the store.
    pub cache_capacity: u64,
    /// Memory the cached sessions may take at most (a user with thousands
    /// of groups weighs more than one with two).
    pub cache_max_bytes: ByteSize,
    /// Largest claims snapshot a login may store; a bigger one is refused
    /// with a log line (an IdP sending megabytes of claims is misconfigured).
    pub max_claims_size: ByteSize,
    /// How long a started login may take before its state expires.
    pub login_timeout: HumanDuration,
    /// Hosts (besides doorward's own) a return-to URL may point at;
    /// `.example.com` allows every subdomain.
    pub allowed_redirect_domains: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "doorward".into(),
            cookie_domain: None,
            insecure_cookie_not_secure: false,
            keys: Vec::new(),
            idle_timeout: HumanDuration::secs(8 * 3600),
            // mod_auth_openidc's default: a session without a refresh token
            // must not keep a stale identity for days.
            absolute_timeout: HumanDuration::secs(8 * 3600),
            refresh_before: HumanDuration::secs(60),
            cache_capacity: 100_000,
            cache_max_bytes: ByteSize(128 << 20),
            max_claims_size: ByteSize(128 << 10),
            login_timeout: HumanDuration::secs(600),
            allowed_redirect_domains: Vec::new(),
        }
    }
}

/// `[server] runtime`: how serving threads share the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeShape {
    /// One single-threaded runtime per serving thread; each connection,
    /// and the upstream connections it uses, stays on one (see
    /// `crate::serving`). The default: measured cheapest per request.
    PerCore,
    /// One work-stealing runtime for everything: an idle thread can take
    /// over a busy one's work, at a cost in cross-thread wake-ups.
    Shared,
}

/// `[server]`: the listener and how it treats clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// The URL users reach doorward at; later used to build callback URLs.
    pub public_url: Option<String>,
    /// Peers whose X-Forwarded-* headers are believed. Empty: nobody's.
    pub trusted_proxies: Vec<IpNet>,
    /// Where doorward's own endpoints live (health, metrics, login, ...).
    pub internal_prefix: String,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: HumanDuration,
    /// Threads serving client connections; 0 means one per CPU core.
    pub worker_threads: usize,
    /// How those threads share work: `per-core` (a runtime per thread, a
    /// connection stays on one) or `shared` (tokio's work-stealing runtime).
    pub runtime: RuntimeShape,
    /// Accept HTTP/2 (h2 over TLS via ALPN, h2c with prior knowledge).
    pub http2: bool,
    /// Time a client has to send a complete request head.
    pub header_read_timeout: HumanDuration,
    /// A client connection with no request in flight and no bytes moving is
    /// closed after this; also bounds a stalled upload or an unread download.
    pub idle_timeout: HumanDuration,
    /// Largest request body accepted; none by default.
    pub max_request_body: Option<ByteSize>,
    /// A whole upload must arrive within this (besides `idle_timeout`
    /// between chunks), so a trickle cannot hold a connection for ever.
    pub upload_timeout: HumanDuration,
    /// Largest request head (request line and headers); bigger gets 431.
    pub max_header_bytes: ByteSize,
    /// Client connections served at once; at the cap new ones wait in the
    /// listen queue (logged), open ones keep working.
    pub max_connections: usize,
    /// HTTP/2 streams one client connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// Protocols a client may upgrade to (`Upgrade:`); anything else is
    /// forwarded as a plain request without the upgrade. Never `h2c`.
    pub allowed_upgrades: Vec<String>,
    /// Who may read `/metrics` on the main listener.
    pub metrics_allow: Vec<IpNet>,
    /// A separate listener for `/metrics` (and health checks), e.g.
    /// "0.0.0.0:9180" for Prometheus; then the main one does not serve it.
    pub metrics_listen: Option<SocketAddr>,
    /// Security warning: decodes `%2F`/`%5C` and backslashes in paths into
    /// separators before normalising (for apps like GitLab that put encoded
    /// slashes in paths) instead of refusing them; the upstream then sees
    /// real slashes, which an app that decodes again may read differently.
    pub insecure_decode_escaped_slashes: bool,
    /// Re-read the config file when it changes (polled every 2 s), as
    /// SIGHUP does; off by default, since SIGHUP is enough where an
    /// operator or orchestrator can send one.
    pub reload_watch: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4180)),
            tls: None,
            public_url: None,
            trusted_proxies: Vec::new(),
            internal_prefix: "/_doorward".into(),
            shutdown_grace: HumanDuration::secs(20),
            worker_threads: 0,
            runtime: RuntimeShape::PerCore,
            http2: true,
            header_read_timeout: HumanDuration::secs(10),
            idle_timeout: HumanDuration::secs(60),
            max_request_body: None,
            upload_timeout: HumanDuration::secs(3600),
            max_header_bytes: ByteSize(64 << 10),
            max_connections: 10_000,
            http2_max_concurrent_streams: 100,
            allowed_upgrades: vec!["websocket".into()],
            // Loopback only: Prometheus elsewhere scrapes `metrics_listen`.
            metrics_allow: vec![
                IpNet::V4(ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::new(127, 0, 0, 0), 8)),
                IpNet::V6(ipnet::Ipv6Net::new_assert(std::net::Ipv6Addr::LOCALHOST, 128)),
            ],
            metrics_listen: None,
            insecure_decode_escaped_slashes: false,
            reload_watch: false,
        }
    }
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: "info", or "info,doorward=debug".
    pub level: String,
    /// One line per request at info level.
    pub access_log: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
            access_log: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[upstream]`: defaults for every route's upstream connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub connect_timeout: HumanDuration,
    /// Time the upstream has to send response headers (504 after).
    pub timeout: HumanDuration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: HumanDuration,
    /// Idle connections kept per upstream.
    pub pool_max_idle: usize,
    /// Extra CA certificates (PEM) trusted for https upstreams, on top of
    /// the system roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: HumanDuration::secs(5),
            timeout: HumanDuration::secs(60),
            pool_idle_timeout: HumanDuration::secs(90),
            pool_max_idle: 128,
            ca_file: None,
        }
    }
}

/// `[headers]`: the names identity travels under. Whatever the names, every
/// incoming copy of each is removed before doorward sets its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNames {
    pub user: String,
    pub email: String,
    pub preferred_username: String,
    pub groups: String,
    pub roles: String,
    pub orgs: String,
    /// The single highest role (by `[identity.roles] rank`).
    pub role: String,
    /// The provider that logged the caller in (its configured name).
    pub idp: String,
    /// How the login was made: the authentication context class (`acr`,
    /// SAML's AuthnContextClassRef) and the methods (`amr`, a list).
    pub acr: String,
    pub amr: String,
    pub assertion: String,
    /// More names to strip from every request (e.g. a legacy `Remote-User`).
    pub strip: Vec<String>,
    /// Lifetime of the signed assertion.
    pub assertion_ttl: HumanDuration,
    /// PKCS#8 PEM files (Ed25519 or P-256). The first signs; all are
    /// published at /_doorward/jwks.json (add the next key second, let
    /// verifiers fetch it, then move it first). None: a key made at start.
    pub signing_keys: Vec<PathBuf>,
    /// Also sign each request (RFC 9421 HTTP Message Signatures).
    pub http_message_signatures: bool,
    /// With signatures on, request bodies up to this size are read whole so
    /// their `Content-Digest` can be signed; bigger bodies are refused (413).
    pub signed_body_limit: ByteSize,
    /// Send the session's access token upstream as X-Forwarded-Access-Token
    /// (for apps that call APIs on the user's behalf). Off by default.
    pub pass_access_token: bool,
    /// Send the ID token upstream as X-Forwarded-Id-Token. Off by default.
    pub pass_id_token: bool,
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            user: "X-Forwarded-User".into(),
            email: "X-Forwarded-Email".into(),
            preferred_username: "X-Forwarded-Preferred-Username".into(),
            groups: "X-Forwarded-Groups".into(),
            roles: "X-Forwarded-Roles".into(),
            orgs: "X-Forwarded-Orgs".into(),
            role: "X-Forwarded-Role".into(),
            idp: "X-Forwarded-Idp".into(),
            acr: "X-Forwarded-Acr".into(),
            amr: "X-Forwarded-Amr".into(),
            assertion: "X-Doorward-Assertion".into(),
            strip: Vec::new(),
            assertion_ttl: HumanDuration::secs(60),
            signing_keys: Vec::new(),
            http_message_signatures: false,
            signed_body_limit: ByteSize(8 << 20),
            pass_access_token: false,
            pass_id_token: false,
        }
    }
}

impl HeaderNames {
    /// Every name doorward owns, configured ones first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        [
            &self.user,
            &self.email,
            &self.preferred_username,
            &self.groups,
            &self.roles,
            &self.orgs,
            &self.role,
            &self.idp,
            &self.acr,
            &self.amr,
            &self.assertion,
        ]
        .into_iter()
        .chain(self.strip.iter())
        .map(String::as_str)
        .chain([
            "x-forwarded-access-token",
            "x-forwarded-id-token",
            "signature",
            "signature-input",
        ])
    }
}

/// `[[route]]`: which requests go where, and which paths need no login.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Exact host (`app.example.com`) or one-level wildcard
    /// (`*.example.com`); absent matches any host.
    pub host: Option<String>,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    pub upstream: String,
    /// Paths that skip authentication: `/x/` (ending in a slash) is a prefix,
    /// anything else an exact path. Matched on the normalised path only.
    #[serde(default)]
    pub public: Vec<String>,
    /// Send the client's Host to the upstream (true) or the upstream's own.
    #[serde(default = "default_true")]
    pub preserve_host: bool,
    /// Overrides `[upstream].timeout` for this route.
    pub timeout: Option<HumanDuration>,
    /// Log in with this provider (by name) instead of offering a choice.
    pub provider: Option<String>,
    /// Accept `Authorization: Bearer <JWT>` access tokens from a provider
    /// with `bearer_audiences` as a login on this route.
    #[serde(default)]
    pub bearer: bool,
    /// The caller must hold one of these (mapped) groups, else 403.
    #[serde(default)]
    pub require_groups: Vec<String>,
    /// The caller must hold one of these roles, else 403.
    #[serde(default)]
    pub require_roles: Vec<String>,
    /// `aud` of the signed assertion (default: the route name).
    pub audience: Option<String>,
    /// A session whose assurance level a shared signal (CAEP
    /// `assurance-level-change`) set to none of these is sent to log in
    /// again. Sessions no signal spoke of pass.
    #[serde(default)]
    pub require_assurance: Vec<String>,
    /// A session whose device a shared signal (CAEP
    /// `device-compliance-change`) called `not-compliant` is sent to log
    /// in again.
    #[serde(default)]
    pub require_compliant_device: bool,
    /// Acceptable authentication context classes (OIDC `acr`, SAML
    /// AuthnContextClassRef), any of them. A session whose login was made
    /// with another is sent to step up at its own provider.
    #[serde(default)]
    pub acr: Vec<String>,
    /// The login must be at most this old, else the user logs in again.
    pub max_age: Option<HumanDuration>,
    /// Methods (OIDC `amr`), any of which the login must have used (Entra
    /// ID and Okta report `mfa`). Checked, not asked for: OIDC has no
    /// parameter for it.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Overrides parts of `[identity]` for this route only.
    pub identity: Option<identity::IdentityConfig>,
}

fn default_path_prefix() -> String {
    "/".into()
}

fn default_true() -> bool {
    true
}
