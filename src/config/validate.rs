//! Checks past what the types say: each returns a key path and a message a
//! user can act on. Validation only reads (a TLS or CA file's existence), so
//! `doorward check` is safe to run anywhere.

use std::collections::HashSet;

use http::HeaderName;

use super::issues::{absolute_http_url, is_loopback, Issues, KeyPath, Seg};
use super::Config;
use crate::paths::{normalize, EscapedSlashes};

use Seg::{Index, Key};

/// Every problem in the config, in file order where possible.
pub fn validate(config: &Config) -> Issues {
    let mut issues = Issues::new();
    check_server(config, &mut issues);
    check_log(config, &mut issues);
    check_headers(config, &mut issues);
    check_routes(config, &mut issues);
    check_login(config, &mut issues);
    super::check_scim::check(config, &mut issues);
    super::ui::check(&config.ui, &mut issues);
    super::admin::check(config, &mut issues);
    super::signals::check(config, &mut issues);
    super::traces::check(config, &mut issues);
    issues
}

/// The settings that weaken a default, each with why it matters: logged at
/// start and listed by `doorward check`.
pub fn weakened(config: &Config) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    if config.server.insecure_decode_escaped_slashes {
        found.push((
            "server.insecure_decode_escaped_slashes".to_string(),
            "encoded slashes in paths are decoded into separators instead of refused",
        ));
    }
    if config.store.insecure_unverified_tls {
        found.push((
            "store.insecure_unverified_tls".to_string(),
            "the database connection's TLS certificate is not verified",
        ));
    }
    if config.session.insecure_cookie_not_secure {
        found.push((
            "session.insecure_cookie_not_secure".to_string(),
            "session cookies are sent over plain http too",
        ));
    }
    for (i, provider) in config.providers.iter().enumerate() {
        for (key, why) in super::check_providers::weakened(provider) {
            found.push((format!("provider[{i}].{key}"), why));
        }
    }
    found.extend(super::signals::weakened(config));
    found
}

fn check_login(config: &Config, issues: &mut Issues) {
    super::check_providers::check(config, issues);
    if !config.providers.is_empty() {
        if config.server.public_url.is_none() {
            issues.push((
                KeyPath::of(&[Key("server"), Key("public_url")]),
                "public_url is required when a [[provider]] is configured (login callbacks are built from it)".into(),
            ));
        }
        if config.session.keys.is_empty() {
            issues.push((
                KeyPath::of(&[Key("session"), Key("keys")]),
                "session keys are required when a [[provider]] is configured (make one with `doorward keygen`)".into(),
            ));
        }
    }
    for (i, key) in config.session.keys.iter().enumerate() {
        let at = KeyPath::of(&[Key("session"), Key("keys"), Index(i)]);
        match key.resolve() {
            Err(e) => issues.push((at, e.to_string())),
            Ok(secret) if secret.expose().len() < super::units::MIN_SECRET_LEN => issues.push((
                at,
                format!(
                    "a session key needs at least {} bytes, this one has {} (make one with `doorward keygen`)",
                    super::units::MIN_SECRET_LEN,
                    secret.expose().len()
                ),
            )),
            Ok(_) => {}
        }
    }
    if config.session.cookie_name.is_empty()
        || !config
            .session
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        issues.push((
            KeyPath::of(&[Key("session"), Key("cookie_name")]),
            format!(
                "`{}` is not a usable cookie name (letters, digits, `-`, `_`)",
                config.session.cookie_name
            ),
        ));
    }
    let url = &config.store.url;
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !url.starts_with("sqlite:") && !postgres {
        issues.push((
            KeyPath::of(&[Key("store"), Key("url")]),
            // Only the scheme is shown: the URL may hold a password.
            format!(
                "the scheme `{}` is not supported: use sqlite://PATH (one node) or postgres://USER@HOST:PORT/DB (several replicas)",
                crate::secret::url_scheme(url).unwrap_or("(none)")
            ),
        ));
    }
    if let Some(password) = &config.store.password {
        if let Err(e) = password.resolve() {
            issues.push((KeyPath::of(&[Key("store"), Key("password")]), e.to_string()));
        }
        if !postgres {
            issues.push((
                KeyPath::of(&[Key("store"), Key("password")]),
                "a password is only for a postgres:// store".into(),
            ));
        }
    }
    if postgres && !config.store.insecure_unverified_tls {
        if let Ok(parsed) = url::Url::parse(url) {
            let loopback = parsed.host_str().is_some_and(is_loopback);
            let verified = parsed
                .query_pairs()
                .any(|(k, v)| k == "sslmode" && (v == "verify-full" || v == "verify-ca"));
            if !loopback && !verified {
                issues.push((
                    KeyPath::of(&[Key("store"), Key("url")]),
                    "add ?sslmode=verify-full (and sslrootcert=/path/ca.pem for a private CA): without it the \
                     connection to the database may be unencrypted or unverified (insecure_unverified_tls = true \
                     allows it)"
                        .into(),
                ));
            }
        }
    }
    if postgres
        && url.contains('@')
        && url
            .split('@')
            .next()
            .is_some_and(|userinfo| userinfo.matches(':').count() > 1)
    {
        issues.push((
            KeyPath::of(&[Key("store"), Key("url")]),
            "put the database password in [store] password (from env or a file), not in the URL".into(),
        ));
    }
    for (i, route) in config.routes.iter().enumerate() {
        if let Some(name) = &route.provider {
            if !config.providers.iter().any(|p| p.name() == name) {
                issues.push((
                    KeyPath::of(&[Key("route"), Index(i), Key("provider")]),
                    format!("no [[provider]] is named `{name}`"),
                ));
            }
        }
        if route.bearer {
            let takes_bearer = config.providers.iter().filter_map(|p| p.oidc()).any(|p| {
                route.provider.as_ref().is_none_or(|pin| *pin == p.name)
                    && (!p.bearer_audiences.is_empty() || p.insecure_accept_id_token_as_bearer)
            });
            if !takes_bearer {
                issues.push((
                    KeyPath::of(&[Key("route"), Index(i), Key("bearer")]),
                    "no provider this route takes has bearer_audiences: no bearer token could pass".into(),
                ));
            }
        }
    }
}

fn check_server(config: &Config, issues: &mut Issues) {
    let server = &config.server;
    let prefix = &server.internal_prefix;
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        issues.push((
            KeyPath::of(&[Key("server"), Key("internal_prefix")]),
            format!("`{prefix}` must start with `/`, have a name, and not end with `/` (e.g. \"/_doorward\")"),
        ));
    } else if normalize(prefix, EscapedSlashes::Reject).as_deref() != Ok(prefix.as_str()) {
        issues.push((
            KeyPath::of(&[Key("server"), Key("internal_prefix")]),
            format!("`{prefix}` is not a normalised path"),
        ));
    }
    if let Some(url) = &server.public_url {
        if let Err(why) = absolute_http_url(url) {
            issues.push((KeyPath::of(&[Key("server"), Key("public_url")]), why));
        }
    }
    if let Some(tls) = &server.tls {
        for (key, path) in [("cert", &tls.cert), ("key", &tls.key)] {
            if let Err(e) = std::fs::metadata(path) {
                issues.push((
                    KeyPath::of(&[Key("server"), Key("tls"), Key(key)]),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
    }
    for (j, protocol) in server.allowed_upgrades.iter().enumerate() {
        if protocol.eq_ignore_ascii_case("h2c") {
            issues.push((
                KeyPath::of(&[Key("server"), Key("allowed_upgrades"), Index(j)]),
                "`h2c` can never be allowed: an upgraded h2c connection would reach the upstream \
                 without passing doorward's checks"
                    .into(),
            ));
        } else if protocol.is_empty() || !protocol.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            issues.push((
                KeyPath::of(&[Key("server"), Key("allowed_upgrades"), Index(j)]),
                format!("`{protocol}` is not a protocol token"),
            ));
        }
    }
    if server.max_connections == 0 || server.http2_max_concurrent_streams == 0 {
        issues.push((
            KeyPath::of(&[Key("server")]),
            "max_connections and http2_max_concurrent_streams must be greater than zero".into(),
        ));
    }
    if server.max_header_bytes.0 < 4096 {
        issues.push((
            KeyPath::of(&[Key("server"), Key("max_header_bytes")]),
            "max_header_bytes must be at least 4 KiB (browsers send several KiB of cookies)".into(),
        ));
    }
    if let (Some(metrics), listen) = (server.metrics_listen, server.listen) {
        if metrics == listen {
            issues.push((
                KeyPath::of(&[Key("server"), Key("metrics_listen")]),
                "metrics_listen must differ from listen".into(),
            ));
        }
    }
    if server.header_read_timeout.0.is_zero() || server.idle_timeout.0.is_zero() || server.upload_timeout.0.is_zero() {
        issues.push((
            KeyPath::of(&[Key("server")]),
            "header_read_timeout, idle_timeout and upload_timeout must be greater than zero".into(),
        ));
    }
    if let Some(path) = &config.upstream.ca_file {
        if let Err(e) = std::fs::metadata(path) {
            issues.push((
                KeyPath::of(&[Key("upstream"), Key("ca_file")]),
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    }
    if config.upstream.connect_timeout.0.is_zero() || config.upstream.timeout.0.is_zero() {
        issues.push((
            KeyPath::of(&[Key("upstream")]),
            "connect_timeout and timeout must be greater than zero".into(),
        ));
    }
}

fn check_log(config: &Config, issues: &mut Issues) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&config.log.level) {
        issues.push((
            KeyPath::of(&[Key("log"), Key("level")]),
            format!(
                "`{}` is not a log filter ({e}); use e.g. \"info\" or \"info,doorward=debug\"",
                config.log.level
            ),
        ));
    }
}

/// Names doorward must never strip or set as identity: the request would
/// break or a client's credentials would be lost.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "cookie",
    "authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "x-request-id",
];

fn check_headers(config: &Config, issues: &mut Issues) {
    let h = &config.headers;
    let named: [(&'static str, &String); 9] = [
        ("user", &h.user),
        ("email", &h.email),
        ("preferred_username", &h.preferred_username),
        ("groups", &h.groups),
        ("roles", &h.roles),
        ("orgs", &h.orgs),
        ("role", &h.role),
        ("idp", &h.idp),
        ("assertion", &h.assertion),
    ];
    let mut seen = HashSet::new();
    let all = named
        .iter()
        .map(|(key, name)| (KeyPath::of(&[Key("headers"), Key(key)]), *name))
        .chain(
            h.strip
                .iter()
                .enumerate()
                .map(|(i, name)| (KeyPath::of(&[Key("headers"), Key("strip"), Index(i)]), name)),
        );
    for (path, name) in all {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push((path, format!("`{name}` is not a valid header name")));
            continue;
        }
        let folded = name.to_ascii_lowercase().replace('_', "-");
        if RESERVED_HEADERS.contains(&folded.as_str()) {
            issues.push((
                path,
                format!("`{name}` is a protocol header doorward cannot own; pick another name"),
            ));
        } else if !seen.insert(folded) {
            issues.push((
                path,
                format!("`{name}` is used twice (names compare ignoring case and `_`/`-`)"),
            ));
        }
    }
}

fn check_routes(config: &Config, issues: &mut Issues) {
    if config.routes.is_empty() {
        issues.push((
            KeyPath::of(&[Key("route")]),
            "no [[route]] is configured: add one with `name`, `path_prefix` and `upstream`".into(),
        ));
    }
    let mut names = HashSet::new();
    let mut places = HashSet::new();
    let internal = &config.server.internal_prefix;
    for (i, route) in config.routes.iter().enumerate() {
        let at = |key: &'static str| KeyPath::of(&[Key("route"), Index(i), Key(key)]);
        if route.name.trim().is_empty() {
            issues.push((at("name"), "a route needs a name".into()));
        } else if !names.insert(route.name.as_str()) {
            issues.push((at("name"), format!("route name `{}` is used twice", route.name)));
        }
        if let Err(why) = upstream_url(&route.upstream) {
            issues.push((at("upstream"), why));
        }
        if let Some(host) = &route.host {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if bare.is_empty()
                || bare.contains('*')
                || host.parse::<http::uri::Authority>().is_err()
                || host.contains(':')
            {
                issues.push((
                    at("host"),
                    format!("`{host}` is not a host name (write `app.example.com` or `*.example.com`, without port)"),
                ));
            }
        }
        match check_path(&route.path_prefix) {
            Err(why) => issues.push((at("path_prefix"), why)),
            Ok(()) if under_internal(&route.path_prefix, internal) => issues.push((
                at("path_prefix"),
                format!("`{}` is inside doorward's own prefix `{internal}`", route.path_prefix),
            )),
            Ok(()) => {}
        }
        let place = (
            route.host.as_deref().map(str::to_ascii_lowercase),
            route.path_prefix.to_ascii_lowercase(),
        );
        if !places.insert(place) {
            issues.push((
                at("path_prefix"),
                "another route already has this host and path_prefix".into(),
            ));
        }
        for (j, public) in route.public.iter().enumerate() {
            if let Err(why) = check_path(public) {
                issues.push((KeyPath::of(&[Key("route"), Index(i), Key("public"), Index(j)]), why));
            }
        }
        check_assurance(route, i, issues);
    }
}

/// A route's `acr` values go to the IdP space-separated (`acr_values`)
/// and back in a `WWW-Authenticate` challenge: one token each, printable
/// ASCII. A `max_age` of zero could never be met.
fn check_assurance(route: &super::RouteConfig, i: usize, issues: &mut Issues) {
    for (j, acr) in route.acr.iter().enumerate() {
        let usable = !acr.is_empty() && acr.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !usable {
            issues.push((
                KeyPath::of(&[Key("route"), Index(i), Key("acr"), Index(j)]),
                format!("`{acr}` is not an acr value (one token of printable ASCII, no spaces or quotes)"),
            ));
        }
    }
    for (j, amr) in route.amr.iter().enumerate() {
        if amr.is_empty() || !amr.bytes().all(|b| b.is_ascii_graphic()) {
            issues.push((
                KeyPath::of(&[Key("route"), Index(i), Key("amr"), Index(j)]),
                format!("`{amr}` is not an amr value (one token of printable ASCII, e.g. `mfa`)"),
            ));
        }
    }
    if route.max_age.is_some_and(|d| d.0.as_secs() == 0) {
        issues.push((
            KeyPath::of(&[Key("route"), Index(i), Key("max_age")]),
            "must be at least one second".into(),
        ));
    }
}

fn under_internal(path: &str, internal: &str) -> bool {
    let (path, internal) = (path.to_ascii_lowercase(), internal.to_ascii_lowercase());
    path == internal || path.starts_with(&format!("{internal}/"))
}

/// A configured path must already be in the normal form requests are
/// matched in, or it could never match (or match more than meant).
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` must start with `/`"));
    }
    match normalize(path, EscapedSlashes::Reject) {
        Ok(normal) if normal == path => Ok(()),
        Ok(normal) => Err(format!("`{path}` is not in normal form; write `{normal}`")),
        Err(e) => Err(format!("`{path}` is not a valid path: {e}")),
    }
}

fn upstream_url(url: &str) -> Result<(), String> {
    let uri = absolute_http_url(url)?;
    if uri.query().is_some() {
        return Err(format!("`{url}`: an upstream URL cannot have a query"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!("`{url}`: credentials in the upstream URL are not supported"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::load::{has_problem as has, problems_with as problems};

    #[test]
    fn route_assurance_values_are_tokens_and_max_age_can_be_met() {
        assert!(problems("acr = [\"urn:okta:loa:2fa:any\", \"gold\"]\nmax_age = \"15m\"\n").is_empty());
        let p = problems("acr = [\"two words\", \"\", \"q\\\"uote\"]\nmax_age = \"0s\"\n");
        for (key, value) in [
            ("route[0].acr[0]", "two words"),
            ("route[0].acr[1]", ""),
            ("route[0].acr[2]", "q\"uote"),
        ] {
            assert!(has(&p, &format!("{key}: `{value}` is not an acr value")), "{p:?}");
        }
        assert!(has(&p, "route[0].max_age: must be at least one second"), "{p:?}");
    }
}
