//! The request path. [`Gateway::handle`] follows DESIGN.md's steps in
//! order: strip identity headers, normalise the path, doorward's own
//! endpoints, route, authorize, forward. Each step either continues or
//! returns an error that [`errors`] turns into the one response.

pub mod body;
pub mod conn_io;
pub mod errors;
pub mod forwarding;
pub mod identity_headers;
mod internal;
pub mod path;
pub mod policy;
pub mod request_id;
pub mod route;
mod upgrade;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::endpoints::Endpoint;
use crate::auth::Auth;
use crate::config::Config;
use crate::metrics::{Metrics, RouteMetrics};
use body::{body_failure_in, RequestBody, ResponseBody};
use conn_io::ConnActivity;
use errors::{wants_json, ProxyError};
use forwarding::{remove_hop_by_hop, wants_upgrade, Forwarding};
use identity_headers::IdentityHeaders;
pub use internal::Readiness;
use path::{normalize, route_prefix_matches, EscapedSlashes};
use policy::{Permit, Refusal};
use route::{request_host, HostMatch, Route, RouteTable};
use upstream::{PoolSettings, Upstream};

/// What a client connection tells the request path.
#[derive(Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    pub activity: Arc<ConnActivity>,
}

/// Everything the request path needs, built once from the config.
pub struct Gateway {
    routes: RouteTable,
    identity_headers: IdentityHeaders,
    forwarding: Forwarding,
    internal_prefix: String,
    escaped_slashes: EscapedSlashes,
    max_request_body: Option<u64>,
    body_idle: Duration,
    access_log: bool,
    metrics: Arc<Metrics>,
    internal_metrics: RouteMetrics,
    unrouted_metrics: RouteMetrics,
    pub readiness: Arc<Readiness>,
    /// Login machinery; None when no provider is configured (then only
    /// public paths pass).
    auth: Option<Arc<Auth>>,
    /// Signs identity assertions (and HTTP message signatures).
    pub signer: Option<Arc<crate::assertion::AssertionSigner>>,
    assertion_header: http::HeaderName,
    http_signatures: bool,
    pass_access_token: bool,
    pass_id_token: bool,
    /// Headers covered by the HTTP message signature.
    signed_headers: Vec<http::HeaderName>,
}

/// The assertion signer: configured keys, or one made now (with a
/// warning: assertions then only verify against this process's JWKS).
fn build_signer(config: &Config) -> Result<Option<crate::assertion::AssertionSigner>, BuildError> {
    use crate::assertion::keys::SigningKey;
    let mut keys = Vec::new();
    for path in &config.headers.signing_keys {
        keys.push(SigningKey::from_file(path).map_err(|e| BuildError::Signing(e.to_string()))?);
    }
    if keys.is_empty() {
        if !config.providers.is_empty() {
            tracing::warn!(
                "no [headers] signing_keys: signing assertions with a key made at start; \
                 set one (doorward keygen --signing) so assertions survive restarts and replicas"
            );
        }
        keys.push(SigningKey::generate());
    }
    let issuer = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| "doorward".to_string());
    Ok(crate::assertion::AssertionSigner::new(
        keys,
        issuer,
        config.headers.assertion_ttl.0,
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("signing key: {0}")]
    Signing(String),
    #[error("route `{route}`: {reason}")]
    Upstream { route: String, reason: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl Gateway {
    pub fn new(config: &Config, metrics: Arc<Metrics>, auth: Option<Arc<Auth>>) -> Result<Self, BuildError> {
        let signer = build_signer(config)?.map(Arc::new);
        let header = |name: &str| http::HeaderName::from_bytes(name.as_bytes()).ok();
        let h = &config.headers;
        let signed_headers: Vec<http::HeaderName> = [
            &h.user,
            &h.email,
            &h.preferred_username,
            &h.groups,
            &h.roles,
            &h.role,
            &h.orgs,
            &h.assertion,
        ]
        .into_iter()
        .filter_map(|n| header(n))
        .chain([http::HeaderName::from_static("x-request-id")])
        .collect();
        let needs_tls = config.routes.iter().any(|r| r.upstream.starts_with("https:"));
        let tls = if needs_tls {
            let client = crate::tls::client_config(config.upstream.ca_file.as_deref())?;
            Some(tokio_rustls::TlsConnector::from(client))
        } else {
            None
        };
        let pool = PoolSettings {
            connect_timeout: config.upstream.connect_timeout.0,
            idle_timeout: config.upstream.pool_idle_timeout.0,
            max_idle: config.upstream.pool_max_idle,
            tls,
        };
        let mut routes = Vec::with_capacity(config.routes.len());
        for (index, r) in config.routes.iter().enumerate() {
            let upstream = Upstream::new(&r.upstream, pool.clone()).map_err(|reason| BuildError::Upstream {
                route: r.name.clone(),
                reason,
            })?;
            routes.push(Route {
                index,
                name: r.name.clone(),
                host: HostMatch::parse(r.host.as_deref()),
                prefix: r.path_prefix.clone(),
                public: r.public.clone(),
                upstream: Arc::new(upstream),
                preserve_host: r.preserve_host,
                timeout: r.timeout.unwrap_or(config.upstream.timeout).0,
                provider: r.provider.clone(),
                bearer: r.bearer,
                policy: auth.as_ref().map_or(0, |a| a.engine.policy_of_route(index)),
                require_groups: r.require_groups.clone(),
                require_roles: r.require_roles.clone(),
                audience: r.audience.clone().unwrap_or_else(|| r.name.clone()),
                metrics: metrics.for_route(&r.name),
            });
        }
        Ok(Self {
            routes: RouteTable::new(routes),
            identity_headers: IdentityHeaders::from_config(&config.headers),
            forwarding: Forwarding::new(config.server.trusted_proxies.clone()),
            internal_prefix: config.server.internal_prefix.clone(),
            escaped_slashes: config.server.escaped_slashes,
            max_request_body: config.server.max_request_body.map(|b| b.0),
            body_idle: config.server.idle_timeout.0,
            access_log: config.log.access_log,
            internal_metrics: metrics.for_route("_internal"),
            unrouted_metrics: metrics.for_route("_unrouted"),
            metrics,
            readiness: Arc::new(Readiness::default()),
            auth,
            signer,
            assertion_header: header(&h.assertion).unwrap_or(http::HeaderName::from_static("x-doorward-assertion")),
            http_signatures: h.http_message_signatures,
            pass_access_token: h.pass_access_token,
            pass_id_token: h.pass_id_token,
            signed_headers,
        })
    }

    /// Handles one request end to end; never fails, since every error
    /// becomes a response here.
    pub async fn handle(&self, mut req: Request<Incoming>, conn: &ConnInfo) -> Response<ResponseBody> {
        let started = Instant::now();
        let _busy = conn.activity.busy();
        let _in_flight = InFlight::enter(&self.metrics);

        // Before anything else, on every path and method: no client-supplied
        // identity survives, whatever route or endpoint comes next.
        self.identity_headers.strip_incoming(req.headers_mut());

        let request_id = request_id::take_or_make(req.headers());
        let id = request_id.to_str().unwrap_or("-");
        let json = wants_json(req.headers());
        let method = req.method().clone();
        let span = tracing::info_span!("request", id);
        let mut seen = Seen::default();
        // A disabled span (log level above info) costs a poll wrapper per
        // request for nothing: skip it.
        let result = if span.is_disabled() {
            self.process(req, conn, &request_id, &mut seen).await
        } else {
            self.process(req, conn, &request_id, &mut seen).instrument(span).await
        };

        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                let status = error.status();
                if let (Some(kind), Some(route)) = (error.upstream_kind(), seen.route.as_ref()) {
                    route.metrics.upstream_error(kind);
                }
                if status.is_server_error() || error.is_security_event() {
                    tracing::warn!(request_id = id, %error, "request failed");
                } else {
                    tracing::debug!(request_id = id, %error, "request refused");
                }
                error.to_response(id, json)
            }
        };
        let elapsed = started.elapsed();
        let metrics = match (&seen.route, seen.internal) {
            (_, true) => &self.internal_metrics,
            (Some(route), _) => &route.metrics,
            (None, _) => &self.unrouted_metrics,
        };
        metrics.observe(response.status(), elapsed);
        if self.access_log {
            tracing::info!(
                target: "doorward::access",
                request_id = id,
                peer = %conn.peer.ip(),
                %method,
                path = seen.path.as_deref().unwrap_or("-"),
                route = seen.route.as_ref().map_or("-", |r| r.name.as_str()),
                status = response.status().as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
            );
        }
        response.headers_mut().insert(request_id::HEADER, request_id);
        response
    }

    async fn process(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        request_id: &HeaderValue,
        seen: &mut Seen,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let (parts, body) = req.into_parts();
        // Normalise once: routing, public rules and the upstream all use this
        // path, so they cannot disagree about what was asked for.
        let path = normalize(parts.uri.path(), self.escaped_slashes)?;
        if self.access_log {
            seen.path = Some(path.to_string());
        }

        if route_prefix_matches(&path, &self.internal_prefix) {
            seen.internal = true;
            let rest = &path[self.internal_prefix.len()..];
            if let (Some(auth), Some(endpoint)) = (&self.auth, Endpoint::parse(rest)) {
                return crate::auth::endpoints::handle(auth, endpoint, &parts, body, &self.internal_prefix).await;
            }
            return internal::respond(self, &parts.method, rest).await;
        }

        let host = request_host(&parts.uri, &parts.headers);
        let route = Arc::clone(self.routes.find(host, &path).ok_or(ProxyError::NoRoute)?);
        seen.route = Some(Arc::clone(&route));

        let caller = match &self.auth {
            Some(auth) => {
                let bearer = route.bearer && !route.is_public(&path);
                auth.authenticate(&parts.headers, bearer, route.provider.as_deref())
                    .await
            }
            None => None,
        };
        let view = caller.as_ref().map(|c| Arc::clone(c.view(route.policy)));
        let tokens = caller.as_ref().and_then(|c| c.passed_tokens());
        let permit = match policy::authorize(&route, &path, view, tokens) {
            Ok(permit) => permit,
            Err(Refusal::Unauthenticated) => return self.unauthenticated(&parts, &path, &route),
            Err(Refusal::Forbidden(reason)) => return Err(ProxyError::Forbidden(reason)),
        };

        let uri = upstream_uri(&route.upstream.base_path, &path, parts.uri.query())?;
        self.forward(parts, body, uri, &route, permit, conn, request_id).await
    }

    /// Sends the request upstream and streams the answer back. Takes a
    /// [`Permit`], which only the policy check can make.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        mut parts: Parts,
        body: Incoming,
        uri: Uri,
        route: &Route,
        permit: Permit,
        conn: &ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if let (Some(limit), Some(declared)) = (self.max_request_body, content_length(&parts)) {
            if declared > limit {
                return Err(ProxyError::BodyTooLarge);
            }
        }
        let upgrade = parts.version == Version::HTTP_11 && wants_upgrade(&parts.headers);
        let client_upgrade = if upgrade {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        parts.extensions = http::Extensions::new();

        // HTTP/2 requests carry the host in the URI, not a Host header.
        let client_host = parts.headers.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        remove_hop_by_hop(&mut parts.headers, upgrade);
        self.forwarding
            .apply(&mut parts.headers, conn.peer.ip(), conn.tls, client_host.as_ref());
        parts.headers.insert(request_id::HEADER, request_id.clone());
        if let Some(auth) = &self.auth {
            crate::session::cookies::strip_own(&mut parts.headers, &auth.cookie_base);
        }
        if let Some(tokens) = permit.tokens() {
            if let (true, Some(access)) = (self.pass_access_token, &tokens.access) {
                parts.headers.insert("x-forwarded-access-token", access.clone());
            }
            if let (true, Some(id)) = (self.pass_id_token, &tokens.id) {
                parts.headers.insert("x-forwarded-id-token", id.clone());
            }
        }
        if let Some(view) = permit.view() {
            self.identity_headers.set(&mut parts.headers, &view.encoded);
            if let Some(signer) = &self.signer {
                let now = crate::session::now();
                let identity = &view.outcome.identity;
                if let Some(assertion) = view.assertions.get(route.index, signer, identity, &route.audience, now) {
                    parts.headers.insert(self.assertion_header.clone(), assertion);
                }
            }
        }
        let host = match client_host {
            Some(host) if route.preserve_host => host,
            _ => route.upstream.authority.clone(),
        };
        parts.headers.insert(HOST, host);
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        if let (true, Some(signer), Some(_)) = (self.http_signatures, &self.signer, permit.view()) {
            let authority = parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_string();
            crate::assertion::http_signature::sign(
                &parts.method,
                &authority,
                route.upstream.is_https(),
                parts.uri.path(),
                &mut parts.headers,
                &self.signed_headers,
                crate::session::now(),
                signer.signing_key(),
            );
        }

        let (body, body_sent) = RequestBody::new(body, self.max_request_body, self.body_idle);
        let request = Request::from_parts(parts, body);
        let exchange = route.upstream.send(request, true);
        tokio::pin!(exchange);
        // The response timeout runs from the end of the upload: a slow but
        // steady upload is bounded by the idle timeout, not this one.
        let sent = tokio::select! {
            response = &mut exchange => Ok(response),
            _ = body_sent => tokio::time::timeout(route.timeout, &mut exchange).await,
        };
        let response = match sent {
            Err(_) => return Err(ProxyError::UpstreamTimeout(route.timeout)),
            Ok(Err(upstream::UpstreamError::Request(e))) => {
                return Err(match body_failure_in(&e) {
                    Some(failure) => ProxyError::ClientBody(failure),
                    None => ProxyError::Upstream(upstream::UpstreamError::Request(e)),
                })
            }
            Ok(result) => result?,
        };

        let (mut head, body) = response.into_parts();
        let switching = head.status == StatusCode::SWITCHING_PROTOCOLS;
        match (switching, client_upgrade, head.extensions.remove::<OnUpgrade>()) {
            (false, _, _) => remove_hop_by_hop(&mut head.headers, false),
            (true, Some(client), Some(upstream)) => {
                remove_hop_by_hop(&mut head.headers, true);
                let id = request_id.to_str().unwrap_or("-").to_string();
                upgrade::spawn_tunnel(client, upstream, conn.activity.busy(), id);
            }
            (true, _, _) => return Err(ProxyError::BadRequest("upstream switched protocols unasked")),
        }
        head.extensions = http::Extensions::new();
        // The upstream's HTTP version is its own business; the client keeps
        // the version it spoke.
        head.version = Version::default();
        Ok(Response::from_parts(head, ResponseBody::Upstream(body)))
    }

    /// No caller on a protected path: browsers are sent to log in (and
    /// come back here), API clients get 401 JSON.
    fn unauthenticated(&self, parts: &Parts, path: &str, route: &Route) -> Result<Response<ResponseBody>, ProxyError> {
        let api_client = wants_json(&parts.headers)
            || parts.headers.contains_key(http::header::AUTHORIZATION)
            || parts
                .headers
                .get("x-requested-with")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
        if self.auth.is_none() || api_client {
            return Err(ProxyError::Unauthenticated);
        }
        let mut return_to = path.to_string();
        if let Some(query) = parts.uri.query() {
            return_to.push('?');
            return_to.push_str(query);
        }
        let mut location = format!("{}/login?rd=", self.internal_prefix);
        location.extend(form_urlencoded::byte_serialize(return_to.as_bytes()));
        if let Some(provider) = &route.provider {
            location.push_str("&provider=");
            location.extend(form_urlencoded::byte_serialize(provider.as_bytes()));
        }
        let location = HeaderValue::from_str(&location).map_err(|_| ProxyError::BadRequest("unusable return path"))?;
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert(http::header::LOCATION, location);
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// The login machinery, when a provider is configured.
    pub fn auth(&self) -> Option<&Arc<Auth>> {
        self.auth.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// What the request path learned, for the access log and metrics.
#[derive(Default)]
struct Seen {
    path: Option<String>,
    route: Option<Arc<Route>>,
    internal: bool,
}

/// Keeps the in-flight gauge right even when a client disconnects and the
/// handler future is dropped midway.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a Metrics) -> Self {
        metrics.in_flight().inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight().dec();
    }
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts.headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The origin-form URI the upstream receives: its base path, then exactly
/// the normalised path doorward matched, then the query untouched.
fn upstream_uri(base: &str, path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
    let mut target = String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str(base);
    target.push_str(path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    Uri::try_from(target).map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))
}
