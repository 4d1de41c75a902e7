//! Building the login machinery from a config: at start (opening the
//! store, starting sessions and providers) and at a reload, which keeps
//! the running sessions and every provider whose config did not change.
//! The providers themselves are built by [`crate::providers`].

use std::sync::Arc;

use super::redirect::RedirectPolicy;
use super::view::{ViewBuilder, Views};
use super::{bearer, Auth, AuthSetupError, RouteRules, Sessions, Urls};
use crate::assertion::AssertionSigner;
use crate::clock::Clock;
use crate::config::Config;
use crate::identity::IdentityEngine;
use crate::identity_headers::IdentityHeaders;
use crate::keyring::KeyRing;
use crate::metrics::{AuthMetrics, IdpMetrics};
use crate::providers::{self, Provider, ProviderSetupError};
use crate::respond::Pages;
use crate::session::cookies::{effective_name, CookieSettings};
use crate::session::{DeriveFn, SessionManager, SessionSettings};
use crate::store::{Store, StoreOptions};

/// What a config says about logins, before sessions and providers: the
/// parts a reload rebuilds while the session manager stays.
struct Parts {
    base: String,
    prefix: String,
    own_host: String,
    keys: KeyRing,
    cookie: CookieSettings,
    cookie_base: String,
    views: Arc<ViewBuilder>,
    derive: DeriveFn<Views>,
    routes: Vec<RouteRules>,
}

impl Parts {
    fn from_config(config: &Config) -> Result<Self, AuthSetupError> {
        let public_url = config
            .server
            .public_url
            .as_deref()
            .ok_or_else(|| AuthSetupError::PublicUrl("required with providers".into()))?;
        let public = url::Url::parse(public_url).map_err(|e| AuthSetupError::PublicUrl(e.to_string()))?;
        let own_host = public
            .host_str()
            .ok_or_else(|| AuthSetupError::PublicUrl("has no host".into()))?
            .to_ascii_lowercase();
        let secrets = config
            .session
            .keys
            .iter()
            .map(|k| k.resolve().map_err(|e| AuthSetupError::Keys(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = KeyRing::new(&secrets).map_err(|e| AuthSetupError::Keys(e.to_string()))?;
        let secure =
            !config.session.insecure_cookie_not_secure && (config.server.tls.is_some() || public.scheme() == "https");
        let cookie = CookieSettings {
            secure,
            domain: config.session.cookie_domain.clone(),
        };
        let cookie_base = effective_name(&config.session.cookie_name, &cookie);
        let engine = Arc::new(IdentityEngine::from_config(config).map_err(|problems| {
            AuthSetupError::Identity(
                problems
                    .into_iter()
                    .map(|(k, m)| format!("{k}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?);
        let routes = RouteRules::from_config(config, Some(&engine));
        let views = Arc::new(ViewBuilder::new(engine, IdentityHeaders::from_config(&config.headers)));
        let derive: DeriveFn<Views> = super::provenance::derive_views(Arc::clone(&views), config);
        Ok(Self {
            base: public_url.trim_end_matches('/').to_string(),
            prefix: config.server.internal_prefix.clone(),
            own_host,
            keys,
            cookie,
            cookie_base,
            views,
            derive,
            routes,
        })
    }
}

/// What a reloaded [`Auth`] changes in the state it shares with the
/// running one. Applied only once everything else of the reload is built,
/// so a reload that fails later leaves the running sessions untouched.
pub struct AuthSwap {
    sessions: Arc<Sessions>,
    keys: KeyRing,
    derive: DeriveFn<Views>,
    /// Providers built anew (changed or added): their metadata refresh
    /// starts now; reused ones keep theirs.
    fresh: Vec<Provider>,
}

impl AuthSwap {
    pub fn apply(self) {
        self.sessions.reconfigure(self.keys, self.derive);
        for provider in &self.fresh {
            provider.spawn_metadata_refresh();
        }
    }
}

/// The context an [`Auth`] is built in (shared by start and reload).
pub struct AuthContext {
    pub signer: Arc<AssertionSigner>,
    pub pages: Arc<Pages>,
    pub metrics: AuthMetrics,
    pub clock: Clock,
}

impl Auth {
    /// Builds the login machinery when providers are configured.
    pub async fn from_config(
        config: &Config,
        signer: Arc<AssertionSigner>,
        pages: Arc<Pages>,
        metrics: AuthMetrics,
        clock: Clock,
    ) -> Result<Option<Self>, AuthSetupError> {
        if config.providers.is_empty() {
            return Ok(None);
        }
        let parts = Parts::from_config(config)?;
        let password = match &config.store.password {
            Some(source) => Some(
                source
                    .resolve()
                    .map_err(|e| AuthSetupError::Keys(format!("store password: {e}")))?,
            ),
            None => None,
        };
        let options = StoreOptions {
            password,
            max_connections: config.store.max_connections,
        };
        let store = Store::open(&config.store.url, &options)
            .await?
            .with_metrics(metrics.store.clone());
        let Parts {
            base,
            prefix,
            own_host,
            keys,
            cookie,
            cookie_base,
            views,
            derive,
            routes,
        } = parts;
        let sessions = Arc::new(
            SessionManager::new(
                store,
                keys,
                SessionSettings {
                    cookie_name: cookie_base.clone(),
                    cookie,
                    idle_timeout: config.session.idle_timeout.0,
                    absolute_timeout: config.session.absolute_timeout.0,
                    cache_capacity: config.session.cache_capacity,
                    cache_max_bytes: config.session.cache_max_bytes.0,
                    pass_tokens: config.headers.pass_access_token || config.headers.pass_id_token,
                },
                derive,
                clock.clone(),
            )
            .with_cache_metrics(metrics.session_cache.clone()),
        );
        sessions.spawn_janitor();
        sessions.follow_store();
        let (providers, _) = build_providers(config, &base, &prefix, &clock, &metrics.idp, None)?;
        let ctx = AuthContext {
            signer,
            pages,
            metrics,
            clock,
        };
        Ok(Some(Self::assemble(
            config,
            ctx,
            Assembly {
                base,
                prefix,
                own_host,
                cookie_base,
                views,
                routes,
                sessions,
                providers,
            },
        )))
    }

    /// The login machinery for a reloaded config, keeping this one's
    /// sessions (store, cache, key ring swapped by the returned
    /// [`AuthSwap`]) and the providers named in `unchanged`, with their
    /// fetched metadata and keys. Nothing shared changes until the swap is
    /// applied.
    pub fn reconfigure(
        &self,
        config: &Config,
        ctx: AuthContext,
        unchanged: &[String],
    ) -> Result<(Self, AuthSwap), AuthSetupError> {
        let parts = Parts::from_config(config)?;
        let reuse = Reuse {
            running: self,
            unchanged,
        };
        let (providers, fresh) = build_providers(
            config,
            &parts.base,
            &parts.prefix,
            &ctx.clock,
            &ctx.metrics.idp,
            Some(reuse),
        )?;
        let swap = AuthSwap {
            sessions: Arc::clone(&self.sessions),
            keys: parts.keys,
            derive: parts.derive,
            fresh,
        };
        let auth = Self::assemble(
            config,
            ctx,
            Assembly {
                base: parts.base,
                prefix: parts.prefix,
                own_host: parts.own_host,
                // The cookie name is restart-only: the running sessions' name.
                cookie_base: self.cookie_base.clone(),
                views: parts.views,
                routes: parts.routes,
                sessions: Arc::clone(&self.sessions),
                providers,
            },
        );
        Ok((auth, swap))
    }

    fn assemble(config: &Config, ctx: AuthContext, a: Assembly) -> Self {
        Self {
            providers: a.providers,
            sessions: a.sessions,
            urls: Urls {
                callback: format!("{}{}/callback", a.base, a.prefix),
                logged_out: format!("{}{}/logged-out", a.base, a.prefix),
                base: a.base,
                prefix: a.prefix,
            },
            redirects: RedirectPolicy {
                own_host: a.own_host,
                allowed: config.session.allowed_redirect_domains.clone(),
            },
            cookie_base: a.cookie_base,
            login_timeout: i64::try_from(config.session.login_timeout.0.as_secs()).unwrap_or(600),
            views: a.views,
            max_claims_bytes: usize::try_from(config.session.max_claims_size.0).unwrap_or(usize::MAX),
            routes: a.routes,
            signer: ctx.signer,
            pages: ctx.pages,
            metrics: ctx.metrics,
            refresh_before: i64::try_from(config.session.refresh_before.0.as_secs()).unwrap_or(60),
            directory: super::provenance::DirectoryBinding::from_config(config),
            bearer: bearer::BearerCache::new(),
            clock: ctx.clock,
        }
    }
}

/// Everything [`Auth::assemble`] takes besides the config.
struct Assembly {
    base: String,
    prefix: String,
    own_host: String,
    cookie_base: String,
    views: Arc<ViewBuilder>,
    routes: Vec<RouteRules>,
    sessions: Arc<Sessions>,
    providers: Vec<Provider>,
}

/// The running login machinery and the providers whose config a reload
/// left as it was.
struct Reuse<'a> {
    running: &'a Auth,
    unchanged: &'a [String],
}

/// The configured providers (see [`crate::providers::build_providers`]),
/// with those a reload left unchanged taken from the running machinery.
fn build_providers(
    config: &Config,
    base: &str,
    prefix: &str,
    clock: &Clock,
    idp: &IdpMetrics,
    reuse: Option<Reuse<'_>>,
) -> Result<(Vec<Provider>, Vec<Provider>), AuthSetupError> {
    let kept = |name: &str| {
        reuse.as_ref().and_then(|r| {
            r.unchanged
                .iter()
                .any(|n| n == name)
                .then(|| r.running.provider(name).cloned())
                .flatten()
        })
    };
    providers::build_providers(config, base, prefix, clock, idp, kept).map_err(|e| match e {
        ProviderSetupError::Oidc(e) => AuthSetupError::Provider(e),
        ProviderSetupError::Saml(e) => AuthSetupError::Saml(e),
        ProviderSetupError::Tls(e) => AuthSetupError::Tls(e),
    })
}
