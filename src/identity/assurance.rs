//! How strongly a login was made, and what a route asks of it: the
//! authentication context class (OIDC `acr`, SAML `AuthnContextClassRef`),
//! the methods (OIDC `amr`) and when the user authenticated (OIDC
//! `auth_time`, SAML `AuthnInstant`). The protocol modules fill an
//! [`Authentication`] from what the IdP signed; the session keeps it in its
//! claims snapshot beside (never inside) the IdP's claims; the login
//! callback and the admission gate both judge it with
//! [`AssuranceAsk::shortfall`], so what a step-up verifies and what a route
//! admits cannot drift apart.

use serde::{Deserialize, Serialize};

/// Clock difference allowed between doorward and an IdP when judging a
/// login's `auth_time` against a `max_age`.
pub const ASSURANCE_SKEW: i64 = 60;

/// What the IdP vouched for about the act of logging in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods (RFC 8176 values: `pwd`, `otp`, `hwk`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user actually authenticated (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Authentication {
    /// Read from OIDC-shaped claims (an ID token, a JWT access token, an
    /// introspection answer). A malformed member counts as absent: absent
    /// is what the checks then refuse when it matters.
    pub fn from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Self {
        let acr = claims
            .get("acr")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let amr = claims
            .get("amr")
            .and_then(|v| v.as_array())
            .map(|methods| methods.iter().filter_map(|m| m.as_str()).map(str::to_string).collect())
            .unwrap_or_default();
        let auth_time = claims.get("auth_time").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        });
        Self { acr, amr, auth_time }
    }
}

/// What a login must prove: a route's `acr` (any of them) and `max_age`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssuranceAsk {
    /// Acceptable context classes, any of them; empty: any class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr: Vec<String>,
    /// The login must be at most this many seconds old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Methods, any of which the login must have used (Entra ID and Okta
    /// say `mfa` here). Checked only: OIDC has no parameter to ask for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Why an authentication falls short of an ask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Shortfall {
    #[error("the login's acr `{got}` is not one of those asked for ({wanted})")]
    AcrNotAccepted { got: String, wanted: String },
    #[error("the login carries no acr; one of {wanted} was asked for")]
    AcrMissing { wanted: String },
    #[error("the login carries no auth_time though max_age was asked for")]
    AuthTimeMissing,
    #[error("the login is {age} s old; max_age is {max_age} s")]
    TooOld { age: i64, max_age: u64 },
    #[error("the login's auth_time is {ahead} s in the future")]
    AuthTimeAhead { ahead: i64 },
    #[error("the login's methods ({got}) include none of those asked for ({wanted})")]
    AmrNotAccepted { got: String, wanted: String },
}

impl AssuranceAsk {
    pub fn is_empty(&self) -> bool {
        self.acr.is_empty() && self.max_age.is_none() && self.amr.is_empty()
    }

    fn wanted(&self) -> String {
        quoted_list(&self.acr)
    }

    /// Why `authn` does not meet this ask at `now`, allowing `skew`
    /// seconds of clock difference with the IdP; None when it does.
    pub fn shortfall(&self, authn: &Authentication, now: i64, skew: i64) -> Option<Shortfall> {
        if !self.acr.is_empty() {
            match &authn.acr {
                None => return Some(Shortfall::AcrMissing { wanted: self.wanted() }),
                Some(got) if !self.acr.iter().any(|a| a == got) => {
                    return Some(Shortfall::AcrNotAccepted {
                        got: got.clone(),
                        wanted: self.wanted(),
                    })
                }
                Some(_) => {}
            }
        }
        if !self.amr.is_empty() && !authn.amr.iter().any(|m| self.amr.contains(m)) {
            return Some(Shortfall::AmrNotAccepted {
                got: if authn.amr.is_empty() {
                    "none".into()
                } else {
                    quoted_list(&authn.amr)
                },
                wanted: quoted_list(&self.amr),
            });
        }
        if let Some(max_age) = self.max_age {
            let Some(auth_time) = authn.auth_time else {
                return Some(Shortfall::AuthTimeMissing);
            };
            let age = now.saturating_sub(auth_time);
            if age < -skew {
                return Some(Shortfall::AuthTimeAhead { ahead: -age });
            }
            let limit = i64::try_from(max_age).unwrap_or(i64::MAX).saturating_add(skew);
            if age > limit {
                return Some(Shortfall::TooOld { age, max_age });
            }
        }
        None
    }
}

fn quoted_list(values: &[String]) -> String {
    values.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
}

/// Kept in the session's claims snapshot under `authentication`.
impl crate::snapshot_member::SnapshotMember for Authentication {
    const MEMBER: &'static str = "authentication";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot_member::SnapshotMember;

    fn authn(acr: Option<&str>, auth_time: Option<i64>) -> Authentication {
        Authentication {
            acr: acr.map(str::to_string),
            amr: vec!["pwd".into()],
            auth_time,
        }
    }

    #[test]
    fn each_shortfall_is_named_and_a_met_ask_passes() {
        let ask = AssuranceAsk {
            acr: vec!["mfa".into(), "phr".into()],
            max_age: Some(900),
            amr: Vec::new(),
        };
        let now = 10_000;
        assert_eq!(ask.shortfall(&authn(Some("phr"), Some(now - 900)), now, 0), None);
        assert_eq!(
            ask.shortfall(&authn(Some("pwd"), Some(now)), now, 0),
            Some(Shortfall::AcrNotAccepted {
                got: "pwd".into(),
                wanted: "`mfa`, `phr`".into()
            })
        );
        assert!(matches!(
            ask.shortfall(&authn(None, Some(now)), now, 0),
            Some(Shortfall::AcrMissing { .. })
        ));
        assert_eq!(
            ask.shortfall(&authn(Some("mfa"), None), now, 0),
            Some(Shortfall::AuthTimeMissing)
        );
        assert_eq!(
            ask.shortfall(&authn(Some("mfa"), Some(now - 961)), now, 60),
            Some(Shortfall::TooOld { age: 961, max_age: 900 })
        );
        assert_eq!(
            ask.shortfall(&authn(Some("mfa"), Some(now - 960)), now, 60),
            None,
            "skew allowed"
        );
        assert_eq!(
            ask.shortfall(&authn(Some("mfa"), Some(now + 61)), now, 60),
            Some(Shortfall::AuthTimeAhead { ahead: 61 })
        );
        // Case matters: acr values are URIs or opaque strings.
        assert!(ask.shortfall(&authn(Some("MFA"), Some(now)), now, 0).is_some());
        assert_eq!(
            AssuranceAsk::default().shortfall(&Authentication::default(), now, 0),
            None
        );
    }

    #[test]
    fn an_amr_ask_takes_any_of_its_methods() {
        let ask = AssuranceAsk {
            amr: vec!["mfa".into(), "hwk".into()],
            ..AssuranceAsk::default()
        };
        let with = |amr: &[&str]| Authentication {
            amr: amr.iter().map(|m| m.to_string()).collect(),
            ..Authentication::default()
        };
        assert_eq!(ask.shortfall(&with(&["pwd", "mfa"]), 0, 0), None);
        assert_eq!(
            ask.shortfall(&with(&["pwd"]), 0, 0).map(|s| s.to_string()).as_deref(),
            Some("the login's methods (`pwd`) include none of those asked for (`mfa`, `hwk`)")
        );
        assert_eq!(
            ask.shortfall(&with(&[]), 0, 0).map(|s| s.to_string()).as_deref(),
            Some("the login's methods (none) include none of those asked for (`mfa`, `hwk`)")
        );
    }

    #[test]
    fn read_from_claims_and_kept_in_the_snapshot_across_a_refresh() {
        let claims = serde_json::json!({"acr": "mfa", "amr": ["pwd", "otp", 3], "auth_time": 1700000000});
        let a = Authentication::from_claims(claims.as_object().unwrap_or(&serde_json::Map::new()));
        assert_eq!(a.acr.as_deref(), Some("mfa"));
        assert_eq!(a.amr, ["pwd", "otp"]);
        assert_eq!(a.auth_time, Some(1_700_000_000));
        let odd = serde_json::json!({"acr": 5, "amr": "pwd", "auth_time": "yesterday"});
        assert_eq!(
            Authentication::from_claims(odd.as_object().unwrap_or(&serde_json::Map::new())),
            Authentication::default()
        );

        let mut snapshot = serde_json::json!({"merged": {"sub": "a"}});
        a.written_into(&mut snapshot);
        assert_eq!(Authentication::of_snapshot(&snapshot.to_string()), a);
        // A refresh keeps the login's; the IdP's own member is not trusted.
        let fresh = serde_json::json!({"merged": {"sub": "a"}, "authentication": {"acr": "forged"}});
        let carried = Authentication::carried_over(&snapshot.to_string(), fresh);
        assert_eq!(Authentication::of_snapshot(&carried.to_string()), a);
        assert_eq!(Authentication::of_snapshot("not json"), Authentication::default());
    }
}
