//! Assembling the request path: [`Gateway::new`] turns a config (and what
//! `build` made from it: auth, signer, pages) into the routes and their
//! upstream pools, the identity headers, the rewriter, the SCIM server and
//! the admin API.
//! It lives here, beside the other constructors `check`, `serve` and
//! `reload` share, so that `proxy/` holds only the request path.

use std::sync::Arc;

use crate::access::Registry;
use crate::admin::api::AdminApi;
use crate::assertion::AssertionSigner;
use crate::auth::{Auth, RouteRules};
use crate::clock::Clock;
use crate::config::Config;
use crate::identity_headers::IdentityHeaders;
use crate::metrics::Metrics;
use crate::paths::EscapedSlashes;
use crate::proxy::errors::GatewayError;
use crate::proxy::rewrite::Rewriter;
use crate::proxy::route::{HostMatch, Route, RouteTable};
use crate::proxy::upstream::{PoolSettings, Upstream};
use crate::proxy::{Gateway, Readiness};
use crate::respond::body::BodyLimits;
use crate::respond::Pages;
use crate::scim::Scim;
use crate::signals::Signals;

impl Gateway {
    /// Assembles the request path from a config and what `build` made
    /// from it: the routes and their upstream pools, the identity headers,
    /// the rewriter and the SCIM server.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        auth: Option<Arc<Auth>>,
        signer: Arc<AssertionSigner>,
        pages: Arc<Pages>,
        clock: Clock,
    ) -> Result<Self, GatewayError> {
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
        let rules = match &auth {
            Some(auth) => auth.routes.clone(),
            None => RouteRules::from_config(config, None),
        };
        let mut routes = Vec::with_capacity(config.routes.len());
        for (r, rules) in config.routes.iter().zip(rules) {
            let upstream = Upstream::new(&r.upstream, pool.clone()).map_err(|reason| GatewayError::Upstream {
                route: r.name.clone(),
                reason,
            })?;
            routes.push(Route {
                metrics: metrics.for_route(&r.name),
                rules,
                host: HostMatch::parse(r.host.as_deref()),
                prefix: r.path_prefix.clone(),
                public: r.public.clone(),
                upstream: Arc::new(upstream),
                preserve_host: r.preserve_host,
                timeout: r.timeout.unwrap_or(config.upstream.timeout).0,
            });
        }
        let identity_headers = IdentityHeaders::from_config(&config.headers);
        let scim = Scim::from_config(config, auth.as_ref().map(Auth::directory_handle))?.map(Arc::new);
        let admin = AdminApi::from_config(config, auth.as_ref().map(Auth::directory_handle)).map(Arc::new);
        let signals = Signals::from_config(
            config,
            auth.as_ref().map(Auth::directory_handle),
            metrics.signals().clone(),
            metrics.auth().idp.clone(),
        )?
        .map(Arc::new);
        // The sessions' generation when there are sessions (a reload keeps
        // both, and carries the registry over).
        let generation = auth
            .as_ref()
            .map(|a| a.sessions.generation().clone())
            .unwrap_or_default();
        Ok(Self {
            admin,
            signals,
            scim,
            scim_elsewhere: config.scim.listen.is_some(),
            routes: RouteTable::new(routes),
            rewrite: Rewriter::new(
                config,
                &identity_headers,
                auth.as_ref().map(|a| a.cookie_base.clone()),
                clock.clone(),
            ),
            clock,
            identity_headers,
            internal_prefix: config.server.internal_prefix.clone(),
            escaped_slashes: if config.server.insecure_decode_escaped_slashes {
                EscapedSlashes::Decode
            } else {
                EscapedSlashes::Reject
            },
            body_limits: BodyLimits {
                max: config.server.max_request_body.map(|b| b.0),
                idle: config.server.idle_timeout.0,
                deadline: config.server.upload_timeout.0,
            },
            allowed_upgrades: config.server.allowed_upgrades.clone(),
            metrics_allow: config.server.metrics_allow.clone(),
            metrics_elsewhere: config.server.metrics_listen.is_some(),
            access_log: config.log.access_log,
            internal_metrics: metrics.for_route("_internal"),
            unrouted_metrics: metrics.for_route("_unrouted"),
            metrics,
            readiness: Arc::new(Readiness::default()),
            auth,
            signer,
            pages,
            access: Arc::new(Registry::new(generation)),
        })
    }
}
