//! `[identity]` and `[route.identity]`: how claims become the identity the
//! upstream sees. Every key is optional so a route can override any part of
//! the global settings and inherit the rest.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One value or several (`default = "x"` or `default = ["x", "y"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one.clone()],
            Self::Many(many) => many.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Claim path for X-Forwarded-User (default: email, then
    /// preferred_username, then sub).
    pub user_claim: Option<String>,
    /// Roles that may open /_doorward/debug.
    pub debug_roles: Option<Vec<String>>,
    pub groups: Option<ListConfig>,
    pub roles: Option<ListConfig>,
    pub orgs: Option<ListConfig>,
    pub login: Option<LoginRules>,
    /// Where groups, roles and organizations come from: the IdP's claims,
    /// the SCIM directory, or both (default; without SCIM, claims only).
    pub source: Option<IdentitySource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    Claims,
    Scim,
    Merged,
}

/// Groups, roles or organizations: where they come from and how they are
/// mapped, filtered and defaulted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// Off keeps the settings but emits nothing from this part.
    pub enabled: Option<bool>,
    /// Claim path (dotted, quoted segments, or a URL-named claim).
    pub claim: Option<String>,
    /// Split a single string claim on this (e.g. ","); unset: one value.
    pub delimiter: Option<String>,
    /// IdP value -> one or more app values.
    pub mapping: Option<BTreeMap<String, OneOrMany>>,
    /// Unmapped values pass by their own name (true) or are dropped.
    pub passthrough: Option<bool>,
    /// Match mapping keys ignoring case.
    pub case_insensitive: Option<bool>,
    /// Applied after mapping: only matching names survive.
    pub regex_filter: Option<String>,
    /// Only these (mapped) names may reach the upstream; empty: no limit.
    pub allowlist: Option<Vec<String>>,
    /// Given when nothing remains (groups, roles); always added (orgs).
    pub default: Option<OneOrMany>,
    /// Groups only: fetch the claim from `_claim_sources` when the IdP
    /// sent it as a distributed claim (Entra ID past 200 groups).
    pub overage: Option<bool>,
    /// Roles only: groups with these names become roles too.
    pub from_groups: Option<Vec<String>>,
    /// Roles only: highest first; the highest held is sent on its own.
    pub rank: Option<Vec<String>>,
}

/// Who may log in. Any list that is set must be matched by at least one
/// of the user's values; unset lists do not restrict.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRules {
    pub allowed_groups: Option<Vec<String>>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
}

macro_rules! overlay {
    ($base:expr, $over:expr, $($field:ident),+) => {{
        let mut merged = $base.clone();
        $( if $over.$field.is_some() { merged.$field = $over.$field.clone(); } )+
        merged
    }};
}

impl ListConfig {
    /// `self` with every key `over` sets replaced.
    pub fn overlay(&self, over: &Self) -> Self {
        overlay!(
            self,
            over,
            enabled,
            claim,
            delimiter,
            mapping,
            passthrough,
            case_insensitive,
            regex_filter,
            allowlist,
            default,
            overage,
            from_groups,
            rank
        )
    }
}

fn overlay_part<T: Clone + Default>(base: &Option<T>, over: &Option<T>, merge: fn(&T, &T) -> T) -> Option<T> {
    match (base, over) {
        (_, None) => base.clone(),
        (None, Some(over)) => Some(over.clone()),
        (Some(base), Some(over)) => Some(merge(base, over)),
    }
}

impl IdentityConfig {
    /// The settings a route sees: its own keys over the global ones.
    pub fn overlay(&self, over: &Self) -> Self {
        Self {
            user_claim: over.user_claim.clone().or_else(|| self.user_claim.clone()),
            debug_roles: over.debug_roles.clone().or_else(|| self.debug_roles.clone()),
            source: over.source.or(self.source),
            groups: overlay_part(&self.groups, &over.groups, ListConfig::overlay),
            roles: overlay_part(&self.roles, &over.roles, ListConfig::overlay),
            orgs: overlay_part(&self.orgs, &over.orgs, ListConfig::overlay),
            // A route's login rules replace the global ones in its policy;
            // the gate requires the global decision too, so a route can
            // only tighten who gets in, never widen it.
            login: over.login.clone().or_else(|| self.login.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.user_claim.is_none()
            && self.debug_roles.is_none()
            && self.groups.is_none()
            && self.roles.is_none()
            && self.orgs.is_none()
            && self.login.is_none()
            && self.source.is_none()
    }
}
