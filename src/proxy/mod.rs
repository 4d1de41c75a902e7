//! The request path. [`Gateway::process`] follows DESIGN.md's steps in
//! order: strip identity headers, normalise the path, doorward's own
//! endpoints, route by host and path, recognise the caller, admit, forward.
//! Each step either continues or returns an error that
//! [`crate::respond::failure_response`] turns into the one response.

pub mod conn_io;
pub mod connection;
pub mod errors;
mod exchange;
pub mod first_head;
pub mod forwarding;
pub mod host;
mod internal;
pub mod policy;
pub mod request_id;
pub(crate) mod rewrite;
pub mod route;
#[cfg(test)]
mod tests;
mod upgrade;
pub mod upstream;
pub mod watch;

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

use crate::access::{Credentials, Registry};
use crate::admin::api::AdminApi;
use crate::assertion::AssertionSigner;
use crate::auth::endpoints::Endpoint;
use crate::auth::{Auth, AuthError, StepUp};
use crate::clock::Clock;
use crate::identity_headers::IdentityHeaders;
use crate::metrics::{Metrics, RouteMetrics};
use crate::paths::{normalize, route_prefix_matches, EscapedSlashes};
use crate::respond::body::{BodyLimits, ClientBody};
use crate::respond::{failure_response, wants_json, Failure, Pages, Reply, ResponseBody};
use crate::scim::Scim;
use crate::telemetry::traces;
pub use connection::{ConnInfo, Listener};
use connection::{InFlight, Seen};
pub use errors::GatewayError;
use errors::ProxyError;
pub use internal::Readiness;
use policy::Stop;
use route::{Route, RouteTable};

/// Everything the request path needs, built once from the config (by
/// `build/gateway.rs`, hence the crate-visible fields).
pub struct Gateway {
    pub(crate) routes: RouteTable,
    pub(crate) identity_headers: IdentityHeaders,
    pub(crate) rewrite: rewrite::Rewriter,
    pub(crate) internal_prefix: String,
    pub(crate) escaped_slashes: EscapedSlashes,
    pub(crate) body_limits: BodyLimits,
    pub(crate) allowed_upgrades: Vec<String>,
    pub(crate) metrics_allow: Vec<ipnet::IpNet>,
    pub(crate) metrics_elsewhere: bool,
    pub(crate) access_log: bool,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) internal_metrics: RouteMetrics,
    pub(crate) unrouted_metrics: RouteMetrics,
    pub readiness: Arc<Readiness>,
    /// Login machinery; None when no provider is configured (then only
    /// public paths pass).
    pub(crate) auth: Option<Arc<Auth>>,
    /// Signs identity assertions (and HTTP message signatures).
    pub signer: Arc<AssertionSigner>,
    /// doorward's own pages: errors here, and their stylesheet and logo.
    pub(crate) pages: Arc<Pages>,
    pub clock: Clock,
    /// The SCIM server, when `[scim]` is enabled.
    pub(crate) scim: Option<Arc<Scim>>,
    /// SCIM is served by its own listener, not under the internal prefix.
    pub(crate) scim_elsewhere: bool,
    /// The operators' API, when `[admin] listen` is set: served only on
    /// that listener.
    pub(crate) admin: Option<Arc<AdminApi>>,
    /// The shared-signals receivers, when `[[signals]]` are configured.
    pub signals: Option<Arc<crate::signals::Signals>>,
    /// Open tunnels and long responses, re-checked on identity changes
    /// (the process's: a reload carries it over).
    pub(crate) access: Arc<Registry>,
}

impl Gateway {
    /// Handles one request end to end; never fails, since every error
    /// becomes a response here. Generic over the body so that the tests
    /// can call it in process; serving, `B` is hyper's `Incoming`.
    pub async fn handle<B: ClientBody>(&self, mut req: Request<B>, conn: &ConnInfo) -> Reply {
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
        // With traces on, the same span is the trace's server span
        // (`otel.*` fields only then: the log's JSON prints this span).
        let span = match traces::on() {
            true => tracing::info_span!("request", id, otel.kind = "server", otel.name = method.as_str()),
            false => tracing::info_span!("request", id),
        };
        // Kept for the status at the end; no clone with traces off.
        let traced = traces::on().then(|| span.clone());
        if let Some(span) = &traced {
            traces::start_request(
                span,
                &traces::RequestStart {
                    method: &method,
                    path: req.uri().path(),
                    headers: req.headers(),
                    peer: conn.peer.ip(),
                    client: self.rewrite.client_address(req.headers(), conn.peer.ip()),
                    request_id: id,
                },
            );
        }
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
                failure_response(&self.pages, &error, id, json)
            }
        };
        if let Some(span) = &traced {
            traces::finish(span, response.status());
        }
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
                route = seen.route.as_ref().map_or("-", |r| r.name()),
                status = response.status().as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
            );
        }
        response.headers_mut().insert(request_id::HEADER, request_id);
        response
    }

    async fn process<B: ClientBody>(
        &self,
        req: Request<B>,
        conn: &ConnInfo,
        request_id: &HeaderValue,
        seen: &mut Seen,
    ) -> Result<Reply, ProxyError> {
        let (parts, body) = req.into_parts();
        // Normalise once: routing, public rules and the upstream all use this
        // path, so they cannot disagree about what was asked for. (A Uri
        // clone is a reference count, not a copy.)
        let uri = parts.uri.clone();
        let path = normalize(uri.path(), self.escaped_slashes)?;
        if self.access_log {
            seen.path = Some(path.to_string());
        }

        if conn.listener == Listener::Scim {
            seen.internal = true;
            return self.scim(&parts, body, &path, conn).await;
        }
        if conn.listener == Listener::Admin {
            seen.internal = true;
            if path.starts_with("/ssf/") && self.signals.is_some() {
                return self
                    .signals_push(&parts, body, &path, conn)
                    .await
                    .ok_or(ProxyError::NotFound);
            }
            return match &self.admin {
                Some(admin) => Ok(admin.handle(&parts, body, &path).await),
                None => Err(ProxyError::NotFound),
            };
        }
        if conn.listener == Listener::Metrics || route_prefix_matches(&path, &self.internal_prefix) {
            seen.internal = true;
            let rest = if conn.listener == Listener::Metrics {
                &path[..]
            } else {
                &path[self.internal_prefix.len()..]
            };
            return self.internal(&parts, body, rest, conn).await;
        }

        // The host is read strictly, once: routing and the upstream's Host
        // and X-Forwarded-Host all use this canonical form.
        let host = host::request_host(&parts.uri, &parts.headers)?;
        let route = Arc::clone(
            self.routes
                .find(host.as_ref().map(|h| h.name.as_str()), &path)
                .ok_or(ProxyError::NoRoute)?,
        );
        seen.route = Some(Arc::clone(&route));
        traces::route(&route.rules.name);

        // Read before recognising: a change after this point wakes the
        // watcher for whatever this request opens (see `watch`).
        let admitted_under = self.access.generation().current();
        let recognised = match &self.auth {
            Some(auth) => {
                let bearer = route.rules.bearer && !route.is_public(&path);
                let span = tracing::info_span!(target: "doorward::trace", "doorward.recognise", doorward.bearer_allowed = bearer);
                auth.recognise(&parts.headers, bearer).instrument(span).await
            }
            None => Ok(None),
        };
        let now = self.auth.as_ref().map_or(0, |auth| auth.clock().now());
        let passage = match policy::decide(&route, &path, recognised, now) {
            Ok(passage) => passage,
            Err(Stop::Login) => return self.unauthenticated(&parts, &path, &route, None),
            Err(Stop::StepUp { provider, reason }) => {
                tracing::info!(route = %route.rules.name, %reason, "sent to step up");
                return self.unauthenticated(&parts, &path, &route, Some(StepUpAt { provider, reason }));
            }
            Err(Stop::Forbidden(reason)) => return Err(ProxyError::Forbidden(reason)),
            Err(Stop::Unavailable(e)) => return Err(ProxyError::Auth(e)),
        };

        let upgrade = upgrade::requested(&parts.headers, &self.allowed_upgrades)?;
        // What it takes to admit this caller again, should the response
        // be long-lived (shared header values: no copy).
        let admission = passage.admitted().map(|_| watch::Admission {
            credentials: Credentials::capture(
                &parts.headers,
                self.auth.as_ref().map(|a| a.sessions.settings.cookie_name.as_str()),
            ),
            host: host.as_ref().map(|h| h.name.as_str()),
            path: &path,
            admitted_under,
        });
        let request = rewrite::Request {
            parts,
            body,
            path: &path,
            host: host.as_ref(),
            route: &route,
            passage: &passage,
            conn,
            request_id,
            upgrade,
        };
        let prepared = self.rewrite.prepare(request, &self.signer, self.body_limits).await?;
        let cookie_name = self.auth.as_ref().map(|a| a.cookie_base.as_str());
        let watched = admission.map(|a| (a, &*self.access));
        exchange::exchange(prepared, &route, conn, request_id, cookie_name, watched).await
    }

    /// doorward's own endpoints: SCIM (which reads its own body, so it
    /// comes first), login and identity ones when providers are configured,
    /// then health, readiness, metrics and keys.
    async fn internal(
        &self,
        parts: &Parts,
        body: impl ClientBody,
        rest: &str,
        conn: &ConnInfo,
    ) -> Result<Reply, ProxyError> {
        let scim_here = conn.listener == Listener::Main && !self.scim_elsewhere;
        if scim_here
            && self
                .scim
                .as_ref()
                .is_some_and(|s| route_prefix_matches(rest, s.base_path()))
        {
            return self.scim(parts, body, rest, conn).await;
        }
        if conn.listener == Listener::Main && rest.starts_with("/ssf/") {
            return self
                .signals_push(parts, body, rest, conn)
                .await
                .ok_or(ProxyError::NotFound);
        }
        if conn.listener == Listener::Main {
            if let (Some(auth), Some(endpoint)) = (&self.auth, Endpoint::parse(rest)) {
                return Ok(crate::auth::endpoints::handle(auth, endpoint, parts, body).await?);
            }
        }
        internal::respond(self, &parts.method, rest, conn).await
    }

    /// A SET pushed to `/ssf/{name}` (on the admin listener when it is
    /// set, else under the internal prefix); None when `path` is not one.
    async fn signals_push(&self, parts: &Parts, body: impl ClientBody, path: &str, conn: &ConnInfo) -> Option<Reply> {
        let signals = self.signals.as_ref()?;
        let here = if signals.on_admin_listener() {
            Listener::Admin
        } else {
            Listener::Main
        };
        let name = path.strip_prefix("/ssf/").filter(|_| conn.listener == here)?;
        let span = tracing::info_span!(target: "doorward::trace", "doorward.signals.push", doorward.transmitter = name);
        signals.push(name, parts, body).instrument(span).await
    }

    /// A SCIM request; `path` is where the SCIM base path starts (the path
    /// after the internal prefix, or the whole path on the SCIM listener).
    async fn scim(
        &self,
        parts: &Parts,
        body: impl ClientBody,
        path: &str,
        conn: &ConnInfo,
    ) -> Result<Reply, ProxyError> {
        let Some(scim) = self.scim.as_ref().filter(|s| route_prefix_matches(path, s.base_path())) else {
            return Err(ProxyError::NotFound);
        };
        // Resource locations are absolute URLs: on the SCIM listener they
        // are built from the request's (strictly read) host.
        let origin = match conn.listener {
            Listener::Scim => host::request_host(&parts.uri, &parts.headers)?
                .and_then(|h| h.header_value())
                .and_then(|v| v.to_str().ok().map(str::to_string))
                .map(|h| format!("{}://{h}", if conn.tls { "https" } else { "http" })),
            _ => None,
        };
        let peer = crate::scim::Peer {
            // Behind trusted proxies, the client (whose failures are counted).
            ip: self.rewrite.client_address(&parts.headers, conn.peer.ip()),
            origin,
        };
        let span = tracing::info_span!(target: "doorward::trace", "doorward.scim", http.request.method = %parts.method);
        Ok(scim
            .handle(parts, body, &path[scim.base_path().len()..], &peer)
            .instrument(span)
            .await)
    }

    /// No acceptable caller on a protected path: browsers are sent to log
    /// in (and come back here), API clients get 401 JSON.
    /// Browsers are sent to log in (to step up at their own provider when
    /// `step_up` says the route's assurance fell short); API clients get
    /// 401, with an RFC 9470 challenge for a step-up.
    fn unauthenticated(
        &self,
        parts: &Parts,
        path: &str,
        route: &Route,
        step_up: Option<StepUpAt>,
    ) -> Result<Reply, ProxyError> {
        let api_client = wants_json(&parts.headers)
            || parts.headers.contains_key(http::header::AUTHORIZATION)
            || parts
                .headers
                .get("x-requested-with")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
        if self.auth.is_none() || api_client {
            return Err(match step_up {
                Some(StepUpAt { reason, .. }) => ProxyError::Auth(AuthError::InsufficientAuthentication(StepUp {
                    reason,
                    ask: route.rules.assurance.clone(),
                })),
                None => ProxyError::Unauthenticated,
            });
        }
        let mut return_to = path.to_string();
        if let Some(query) = parts.uri.query() {
            return_to.push('?');
            return_to.push_str(query);
        }
        let mut location = format!("{}/login?rd=", self.internal_prefix);
        location.extend(form_urlencoded::byte_serialize(return_to.as_bytes()));
        // A step-up goes to the session's own provider, with the route
        // named so the login asks for (and checks) what it needs.
        let provider = match &step_up {
            Some(at) => Some(at.provider.as_str()),
            None => route.rules.provider.as_deref(),
        };
        if let Some(provider) = provider {
            location.push_str("&provider=");
            location.extend(form_urlencoded::byte_serialize(provider.as_bytes()));
        }
        if step_up.is_some() || !route.rules.assurance.is_empty() {
            location.push_str("&route=");
            location.extend(form_urlencoded::byte_serialize(route.rules.name.as_bytes()));
        }
        let location = HeaderValue::from_str(&location).map_err(|_| ProxyError::BadRequest("unusable return path"))?;
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert(http::header::LOCATION, location);
        Ok(crate::respond::no_store(response))
    }

    /// The login machinery, when a provider is configured.
    pub fn auth(&self) -> Option<&Arc<Auth>> {
        self.auth.as_ref()
    }

    /// The open long-lived admissions (tests count them).
    pub fn access(&self) -> &Arc<Registry> {
        &self.access
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The process's registry, for the next gateway a reload builds.
    pub fn shared_metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }
}

/// Where a caller whose login fell short of a route's assurance steps up.
struct StepUpAt {
    /// The session's own provider (no chooser: the same user must return).
    provider: String,
    /// Why, for the 401's log line.
    reason: String,
}
