//! The identity engine: claims in, [`Outcome`] out (the identity, whether
//! login is allowed, and, when asked, why each value came or went).
//!
//! Pure and deterministic: no I/O, no clock. Order of operations, for
//! groups, roles and organizations alike: read every value of the claim;
//! map (1:N) or pass through unmapped values; apply `regex_filter` to the
//! mapped names; keep only `allowlist` names; fill in `default` when
//! nothing remains (organizations: the default is always added). Roles also
//! come from groups named in `from_groups`, and `rank` picks the highest.

use std::collections::{HashMap, HashSet};

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::claim_path::ClaimPath;
use super::{email_domain, Claims, Identity};
use crate::config::identity::{IdentityConfig, IdentitySource, ListConfig, LoginRules};

/// Why a value is in the identity, or is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// "group", "role", "org", "user" or "login".
    pub part: &'static str,
    pub value: String,
    pub action: Action,
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Kept,
    Added,
    Dropped,
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginDecision {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The groups claim was not sent but referenced as a distributed claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overage {
    pub claim: String,
    /// Where the claim can be fetched, if the IdP said.
    pub endpoint: Option<String>,
    /// Whether `[identity.groups] overage = true` asks doorward to fetch it.
    pub fetch: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub identity: Identity,
    pub login: LoginDecision,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overage: Option<Overage>,
}

/// What the SCIM directory says of a user, in the engine's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub orgs: Vec<String>,
}

/// Where list values come from for one computation.
struct Inputs<'a> {
    claims: &'a Claims,
    use_claims: bool,
    directory: Option<&'a Directory>,
}

/// Collects reasons only when explaining: the login path skips the cost.
struct Recorder {
    on: bool,
    reasons: Vec<Reason>,
}

impl Recorder {
    fn add(&mut self, part: &'static str, value: &str, action: Action, rule: impl FnOnce() -> String) {
        if self.on {
            self.reasons.push(Reason {
                part,
                value: value.to_string(),
                action,
                rule: rule(),
            });
        }
    }
}

#[derive(Debug)]
struct ListRules {
    claim: ClaimPath,
    delimiter: Option<String>,
    mapping: HashMap<String, Vec<String>>,
    passthrough: bool,
    case_insensitive: bool,
    regex: Option<Regex>,
    allowlist: Option<HashSet<String>>,
    default: Vec<String>,
    overage: bool,
    from_groups: Vec<String>,
    rank: Vec<String>,
}

/// A compiled `[identity]` (global, or a route's overlay of it).
#[derive(Debug)]
pub struct Policy {
    user_claim: Option<ClaimPath>,
    groups: Option<ListRules>,
    roles: Option<ListRules>,
    orgs: Option<ListRules>,
    login: LoginRules,
    pub debug_roles: Vec<String>,
    source: IdentitySource,
}

/// A problem in the identity settings: the key (relative to the identity
/// table) and what is wrong.
pub type PolicyProblem = (String, String);

fn compile_list(
    config: Option<&ListConfig>,
    default_claim: &str,
    part: &str,
    problems: &mut Vec<PolicyProblem>,
) -> Option<ListRules> {
    let empty = ListConfig::default();
    let config = config.unwrap_or(&empty);
    if config.enabled == Some(false) {
        return None;
    }
    let claim_text = config.claim.as_deref().unwrap_or(default_claim);
    // Parse everything first so every problem is reported in one run.
    let claim = ClaimPath::parse(claim_text)
        .map_err(|e| problems.push((format!("{part}.claim"), e.to_string())))
        .ok();
    let case_insensitive = config.case_insensitive.unwrap_or(false);
    let mapping = config
        .mapping
        .iter()
        .flatten()
        .map(|(k, v)| (if case_insensitive { k.to_lowercase() } else { k.clone() }, v.to_vec()))
        .collect();
    let regex = match config.regex_filter.as_deref().map(Regex::new) {
        Some(Ok(regex)) => Some(regex),
        Some(Err(e)) => {
            problems.push((
                format!("{part}.regex_filter"),
                format!("not a valid regular expression: {e}"),
            ));
            None
        }
        None => None,
    };
    if part != "roles" && (config.from_groups.is_some() || config.rank.is_some()) {
        problems.push((
            part.to_string(),
            "from_groups and rank are only for [identity.roles]".into(),
        ));
    }
    if part != "groups" && config.overage.is_some() {
        problems.push((
            format!("{part}.overage"),
            "overage is only for [identity.groups]".into(),
        ));
    }
    Some(ListRules {
        claim: claim?,
        delimiter: config.delimiter.clone(),
        mapping,
        passthrough: config.passthrough.unwrap_or(true),
        case_insensitive,
        regex,
        allowlist: config
            .allowlist
            .as_ref()
            .filter(|list| !list.is_empty())
            .map(|list| list.iter().cloned().collect()),
        default: config.default.as_ref().map(|d| d.to_vec()).unwrap_or_default(),
        overage: config.overage.unwrap_or(false),
        from_groups: config.from_groups.clone().unwrap_or_default(),
        rank: config.rank.clone().unwrap_or_default(),
    })
}

impl Policy {
    pub fn compile(config: &IdentityConfig) -> Result<Self, Vec<PolicyProblem>> {
        let mut problems = Vec::new();
        let user_claim = match config.user_claim.as_deref().map(ClaimPath::parse) {
            Some(Ok(path)) => Some(path),
            Some(Err(e)) => {
                problems.push(("user_claim".to_string(), e.to_string()));
                None
            }
            None => None,
        };
        let policy = Self {
            user_claim,
            groups: compile_list(config.groups.as_ref(), "groups", "groups", &mut problems),
            roles: compile_list(config.roles.as_ref(), "roles", "roles", &mut problems),
            orgs: compile_list(config.orgs.as_ref(), "organizations", "orgs", &mut problems),
            login: config.login.clone().unwrap_or_default(),
            debug_roles: config.debug_roles.clone().unwrap_or_default(),
            source: config.source.unwrap_or(IdentitySource::Merged),
        };
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }

    /// The identity for these claims. `explain` also records the reasons.
    pub fn compute(&self, claims: &Claims, explain: bool) -> Outcome {
        self.compute_with(claims, None, explain)
    }

    /// The identity for these claims and what the directory (SCIM) says
    /// of the user; `[identity] source` decides which of the two count.
    pub fn compute_with(&self, claims: &Claims, directory: Option<&Directory>, explain: bool) -> Outcome {
        let (from_claims, from_directory) = match self.source {
            IdentitySource::Claims => (true, None),
            IdentitySource::Scim => (false, directory),
            IdentitySource::Merged => (true, directory),
        };
        let inputs = Inputs {
            claims,
            use_claims: from_claims,
            directory: from_directory,
        };
        let mut rec = Recorder {
            on: explain,
            reasons: Vec::new(),
        };
        let string = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let subject = string("sub").unwrap_or_default();
        let email = string("email");
        let preferred_username = string("preferred_username");
        let configured_user = self
            .user_claim
            .as_ref()
            .and_then(|path| path.strings(claims, None))
            .and_then(|values| values.into_iter().find(|v| !v.trim().is_empty()))
            .map(|v| v.into_owned());
        let user = configured_user
            .or_else(|| email.clone())
            .or_else(|| preferred_username.clone())
            .unwrap_or_else(|| subject.clone());

        let mut overage = None;
        let groups = match &self.groups {
            Some(rules) => {
                if from_claims && rules.claim.lookup(claims).is_none() {
                    overage = detect_overage(claims, rules);
                }
                run_list(rules, &inputs, "group", &mut rec, true)
            }
            None => Vec::new(),
        };
        let (roles, role) = match &self.roles {
            Some(rules) => {
                let mut roles = run_list(rules, &inputs, "role", &mut rec, false);
                for group in &groups {
                    if rules.from_groups.contains(group) && !roles.contains(group) {
                        rec.add("role", group, Action::Added, || {
                            format!("group `{group}` is named in roles.from_groups")
                        });
                        roles.push(group.clone());
                    }
                }
                if roles.is_empty() {
                    for default in &rules.default {
                        rec.add("role", default, Action::Added, || {
                            "roles.default (no role remained)".into()
                        });
                        roles.push(default.clone());
                    }
                }
                let role = rules.rank.iter().find(|r| roles.contains(r)).cloned();
                if let Some(role) = &role {
                    rec.add("role", role, Action::Note, || "highest held role in roles.rank".into());
                }
                (roles, role)
            }
            None => (Vec::new(), None),
        };
        let orgs = match &self.orgs {
            Some(rules) => {
                let mut orgs = run_list(rules, &inputs, "org", &mut rec, false);
                for default in &rules.default {
                    if !orgs.contains(default) {
                        rec.add("org", default, Action::Added, || {
                            "orgs.default (every user gets it)".into()
                        });
                        orgs.push(default.clone());
                    }
                }
                orgs
            }
            None => Vec::new(),
        };
        let identity = Identity {
            subject,
            user,
            email,
            preferred_username,
            groups,
            roles,
            role,
            orgs,
            ..Identity::default()
        };
        let login = self.login_decision(&identity);
        if let Some(reason) = &login.reason {
            rec.add("login", &identity.user, Action::Dropped, || reason.clone());
        }
        Outcome {
            identity,
            login,
            reasons: rec.reasons,
            overage,
        }
    }

    /// `[identity.login]`: every list that is set is a way in; a user who
    /// matches none of the set lists is refused.
    fn login_decision(&self, identity: &Identity) -> LoginDecision {
        let rules = &self.login;
        let mut ways = Vec::new();
        if let Some(groups) = rules.allowed_groups.as_ref().filter(|l| !l.is_empty()) {
            ways.push((
                identity.groups.iter().any(|g| groups.contains(g)),
                "holds none of login.allowed_groups",
            ));
        }
        if let Some(domains) = rules.allowed_email_domains.as_ref().filter(|l| !l.is_empty()) {
            let domain = identity.email.as_deref().and_then(email_domain);
            let ok = domain.is_some_and(|d| domains.iter().any(|a| a.eq_ignore_ascii_case(&d)));
            ways.push((ok, "email domain is not in login.allowed_email_domains"));
        }
        if let Some(emails) = rules.allowed_emails.as_ref().filter(|l| !l.is_empty()) {
            let ok = identity
                .email
                .as_deref()
                .is_some_and(|e| emails.iter().any(|a| a.eq_ignore_ascii_case(e)));
            ways.push((ok, "email is not in login.allowed_emails"));
        }
        if ways.is_empty() || ways.iter().any(|(ok, _)| *ok) {
            return LoginDecision {
                allowed: true,
                reason: None,
            };
        }
        let why: Vec<&str> = ways.iter().map(|(_, why)| *why).collect();
        LoginDecision {
            allowed: false,
            reason: Some(why.join("; ")),
        }
    }
}

/// OIDC distributed claims: `_claim_names.{claim}` names a source in
/// `_claim_sources` (Entra ID does this past 200 groups).
fn detect_overage(claims: &Claims, rules: &ListRules) -> Option<Overage> {
    let name = rules.claim.as_str();
    let source = claims.get("_claim_names")?.as_object()?.get(name)?.as_str()?;
    let endpoint = claims
        .get("_claim_sources")
        .and_then(|s| s.as_object())
        .and_then(|s| s.get(source))
        .and_then(|s| s.get("endpoint"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Overage {
        claim: name.to_string(),
        endpoint,
        fetch: rules.overage,
    })
}

/// Reads, maps, filters and defaults one list. `apply_default` is false for
/// roles (their default comes after from_groups) and orgs (always added).
fn run_list(
    rules: &ListRules,
    inputs: &Inputs<'_>,
    part: &'static str,
    rec: &mut Recorder,
    apply_default: bool,
) -> Vec<String> {
    let mut values = if inputs.use_claims {
        match rules.claim.strings(inputs.claims, rules.delimiter.as_deref()) {
            Some(values) => values,
            None => {
                rec.add(part, rules.claim.as_str(), Action::Note, || {
                    "claim is missing: no values".into()
                });
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    // The directory's values go through the same mapping, filters and
    // defaults as the claim's.
    if let Some(directory) = inputs.directory {
        let extra = match part {
            "group" => &directory.groups,
            "role" => &directory.roles,
            _ => &directory.orgs,
        };
        for value in extra {
            rec.add(part, value, Action::Note, || "from the SCIM directory".into());
            values.push(std::borrow::Cow::Borrowed(value.as_str()));
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    // Borrowed names: mapping a large group list should not copy it twice.
    let mut seen: HashSet<&str> = HashSet::with_capacity(values.len());
    for value in &values {
        let lowered;
        let key = if rules.case_insensitive {
            lowered = value.to_lowercase();
            lowered.as_str()
        } else {
            value.as_ref()
        };
        let mapped = rules.mapping.get(key);
        let targets: Vec<&str> = match mapped {
            Some(targets) => targets.iter().map(String::as_str).collect(),
            None if rules.passthrough => vec![value.as_ref()],
            None => {
                rec.add(part, value, Action::Dropped, || {
                    "not in mapping and passthrough is off".into()
                });
                continue;
            }
        };
        for target in targets {
            if let Some(regex) = &rules.regex {
                if !regex.is_match(target) {
                    rec.add(part, target, Action::Dropped, || {
                        format!("does not match regex_filter `{}`", regex.as_str())
                    });
                    continue;
                }
            }
            if let Some(allowlist) = &rules.allowlist {
                if !allowlist.contains(target) {
                    rec.add(part, target, Action::Dropped, || "not in allowlist".into());
                    continue;
                }
            }
            if !seen.insert(target) {
                continue;
            }
            rec.add(part, target, Action::Kept, || {
                if mapped.is_some() {
                    format!("mapping: `{value}` -> `{target}`")
                } else {
                    "passed through (not in mapping)".into()
                }
            });
            out.push(target.to_string());
        }
    }
    if apply_default && out.is_empty() {
        for default in &rules.default {
            rec.add(part, default, Action::Added, || {
                format!("{part}s.default (no {part} remained)")
            });
            out.push(default.clone());
        }
    }
    out
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
