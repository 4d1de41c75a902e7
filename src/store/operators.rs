//! Which sessions an operator means (`doorward sessions list|revoke`, the
//! admin API): a user, a provider, a session key prefix, or a mix. The
//! store lists and revokes by it; matching a user needs the stored claims,
//! so it is decided here on the row, the same way for both backends.

use super::directory::{key_for_external_id, key_for_user_name};
use super::SessionRecord;

/// The shortest session key prefix accepted: shorter ones could name many
/// sessions by accident.
pub const MIN_KEY_PREFIX: usize = 8;

/// How much of a session key `list` shows (enough to name one session).
pub const SHOWN_KEY_PREFIX: usize = 16;

/// Sessions an operator names. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSelector {
    /// The subject, the directory userName (or externalId), or the claims'
    /// `email` / `preferred_username`.
    pub user: Option<String>,
    /// The `[[provider]]` name: the same email from two IdPs is two people.
    pub provider: Option<String>,
    /// A prefix of the store key's hex (as `list` shows it), or all of it.
    pub session: Option<String>,
    /// The subject exactly (a shared signal's `iss_sub` or `opaque`).
    pub subject: Option<String>,
    /// The issuer the session's provider had at login, exactly.
    pub issuer: Option<String>,
    /// The claims' `email`, ignoring case (a shared signal's `email`).
    pub email: Option<String>,
    /// The IdP's session (`sid`, SAML `SessionIndex`) exactly.
    pub sid: Option<String>,
    /// Only sessions made at or before this time (unix seconds): an event
    /// about a user's sessions does not reach a login made after it.
    pub created_by: Option<i64>,
}

impl SessionSelector {
    /// Names nothing in particular: listing shows everything, revoking
    /// ends nothing (never "everyone" by omission).
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.provider.is_none()
            && self.session.is_none()
            && self.subject.is_none()
            && self.email.is_none()
            && self.sid.is_none()
    }

    /// Why this selector cannot be used, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        match &self.session {
            Some(prefix) if prefix.len() < MIN_KEY_PREFIX || prefix.len() > 64 => {
                Some("a session key is 8 to 64 hex digits (as `list` shows it)")
            }
            Some(prefix) if !prefix.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some("a session key is hex digits (as `list` shows it)")
            }
            _ if self.user.as_deref().is_some_and(str::is_empty) => Some("the user is empty"),
            _ if self.provider.as_deref().is_some_and(str::is_empty) => Some("the provider is empty"),
            _ => None,
        }
    }

    /// Whether `record` is one of the sessions named.
    pub fn matches(&self, record: &SessionRecord) -> bool {
        if self.provider.as_deref().is_some_and(|p| p != record.provider) {
            return false;
        }
        if let Some(prefix) = &self.session {
            if !record.key.to_hex().starts_with(&prefix.to_ascii_lowercase()) {
                return false;
            }
        }
        if self.subject.as_deref().is_some_and(|s| s != record.subject)
            || self.issuer.as_deref().is_some_and(|i| i != record.issuer)
            || self.sid.as_ref().is_some_and(|sid| record.sid.as_ref() != Some(sid))
            || self.created_by.is_some_and(|at| record.created_at > at)
        {
            return false;
        }
        if let Some(email) = &self.email {
            if !SessionNames::of(record)
                .email
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
            {
                return false;
            }
        }
        match &self.user {
            Some(user) => user_matches(user, record),
            None => true,
        }
    }
}

/// The subject exactly; the directory keys as the login matched them; the
/// names from the claims ignoring case (as the directory's userName does).
fn user_matches(user: &str, record: &SessionRecord) -> bool {
    if record.subject == user {
        return true;
    }
    if let Some(key) = &record.match_key {
        // Keys name the directory's provider; sessions from before that
        // carry `name:`/`ext:` keys, which still reach the same person.
        let legacy = [format!("name:{}", user.to_lowercase()), format!("ext:{user}")];
        if *key == key_for_user_name(&record.provider, user)
            || *key == key_for_external_id(&record.provider, user)
            || legacy.contains(key)
        {
            return true;
        }
    }
    let names = SessionNames::of(record);
    [names.email, names.preferred_username]
        .iter()
        .flatten()
        .any(|name| name.eq_ignore_ascii_case(user))
}

/// The names a session's claims give its user (never the claims wholesale).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionNames {
    pub email: Option<String>,
    pub preferred_username: Option<String>,
}

impl SessionNames {
    /// From the merged claims of the stored snapshot; nothing if it does not
    /// parse.
    pub fn of(record: &SessionRecord) -> Self {
        let snapshot: serde_json::Value = serde_json::from_str(&record.claims).unwrap_or_default();
        let merged = snapshot.get("merged");
        let text = |name: &str| {
            merged
                .and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Self {
            email: text("email"),
            preferred_username: text("preferred_username"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionKey;

    fn record(provider: &str, subject: &str, email: &str, match_key: Option<&str>) -> SessionRecord {
        SessionRecord {
            key: SessionKey([0xab; 32]),
            provider: provider.into(),
            issuer: "https://idp".into(),
            subject: subject.into(),
            sid: None,
            logout_hint: None,
            idp_expires_at: None,
            claims: format!("{{\"merged\":{{\"email\":\"{email}\",\"preferred_username\":\"al\"}}}}"),
            tokens: vec![],
            token_expires_at: None,
            created_at: 1,
            expires_at: 2,
            last_seen: 1,
            last_refresh: 1,
            match_key: match_key.map(str::to_string),
        }
    }

    fn user(u: &str) -> SessionSelector {
        SessionSelector {
            user: Some(u.into()),
            ..SessionSelector::default()
        }
    }

    #[test]
    fn a_user_is_matched_by_subject_directory_key_or_claimed_names() {
        for key in ["name@a:alice.dir", "name:alice.dir"] {
            let r = record("a", "sub-1", "Alice@Example.com", Some(key));
            for name in ["sub-1", "alice@example.com", "ALICE@example.COM", "al", "Alice.Dir"] {
                assert!(user(name).matches(&r), "{name} by {key}");
            }
            for name in ["sub", "bob@example.com", "alice", ""] {
                assert!(!user(name).matches(&r), "{name} by {key}");
            }
        }
        for key in ["ext@a:00u1", "ext:00u1"] {
            let external = record("a", "s", "x@y", Some(key));
            assert!(user("00u1").matches(&external), "{key}");
        }
        // Another provider's key for the same name is another person.
        let foreign = record("a", "s", "x@y", Some("name@b:alice.dir"));
        assert!(!user("alice.dir").matches(&foreign));
    }

    #[test]
    fn the_provider_narrows_and_the_key_prefix_names_one_session() {
        let r = record("a", "sub-1", "alice@example.com", None);
        let mut s = user("alice@example.com");
        s.provider = Some("b".into());
        assert!(!s.matches(&r), "the same email from another IdP is another person");
        s.provider = Some("a".into());
        assert!(s.matches(&r));
        let by_key = |k: &str| SessionSelector {
            session: Some(k.into()),
            ..SessionSelector::default()
        };
        assert!(by_key("abababab").matches(&r));
        assert!(by_key("ABABABAB").matches(&r));
        assert!(!by_key("abababac").matches(&r));
        assert_eq!(
            by_key("abab").problem(),
            Some("a session key is 8 to 64 hex digits (as `list` shows it)")
        );
        assert_eq!(
            by_key("zzzzzzzz").problem(),
            Some("a session key is hex digits (as `list` shows it)")
        );
        assert_eq!(by_key("abababab").problem(), None);
        assert!(SessionSelector::default().is_empty());
    }

    #[test]
    fn names_come_from_the_merged_claims_only() {
        let mut r = record("a", "s", "e@x", None);
        assert_eq!(SessionNames::of(&r).email.as_deref(), Some("e@x"));
        r.claims = "not json".into();
        assert_eq!(SessionNames::of(&r), SessionNames::default());
    }
}
