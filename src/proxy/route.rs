//! Routes: which upstream a request goes to and which of its paths are
//! public. Chosen by host (exact beats wildcard beats any), then by the
//! longest matching path prefix.

use std::sync::Arc;
use std::time::Duration;

use super::upstream::Upstream;
use crate::auth::RouteRules;
use crate::metrics::RouteMetrics;
use crate::paths::{public_rule_matches, route_prefix_matches};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    /// `*.example.com`, stored as `.example.com`; one label deep.
    Wildcard(String),
    Exact(String),
}

impl HostMatch {
    pub fn parse(host: Option<&str>) -> Self {
        match host {
            None => Self::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => Self::Wildcard(suffix.to_ascii_lowercase()),
                None => Self::Exact(h.to_ascii_lowercase()),
            },
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Any => 0,
            Self::Wildcard(_) => 1,
            Self::Exact(_) => 2,
        }
    }

    /// `host` is the request's host without port.
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(want) => host.eq_ignore_ascii_case(want),
            Self::Wildcard(suffix) => {
                host.len() > suffix.len()
                    && host.as_bytes()[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
                    && !host[..host.len() - suffix.len()].contains('.')
            }
        }
    }
}

/// One configured route, ready to serve.
pub struct Route {
    /// Who may pass (the admission gate's requirements) and the route's
    /// name, slot and assertion audience.
    pub rules: RouteRules,
    pub host: HostMatch,
    pub prefix: String,
    pub public: Vec<String>,
    pub upstream: Arc<Upstream>,
    pub preserve_host: bool,
    pub timeout: Duration,
    pub metrics: RouteMetrics,
}

impl Route {
    pub fn name(&self) -> &str {
        &self.rules.name
    }

    /// Is this normalised path one that skips authentication?
    pub fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|rule| public_rule_matches(path, rule))
    }
}

/// All routes, most specific first.
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse((r.host.rank(), r.prefix.len())));
        Self {
            routes: routes.into_iter().map(Arc::new).collect(),
        }
    }

    /// The route for a request: `host` without port (None when the request
    /// had none), `path` normalised.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| {
            let host_ok = match host {
                Some(host) => route.host.matches(host),
                None => route.host == HostMatch::Any,
            };
            host_ok && route_prefix_matches(path, &route.prefix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        let w = HostMatch::parse(Some("*.example.com"));
        assert!(w.matches("a.example.com"));
        assert!(w.matches("A.Example.COM"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("a.b.example.com"));
        assert!(!w.matches("aexample.com"));
    }
}
