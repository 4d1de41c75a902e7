//! Operators end access by hand: `doorward sessions list|revoke` ([`cli`])
//! and the admin HTTP API on its own listener ([`api`]). Both name sessions
//! with a [`SessionSelector`] and show them as [`SessionLine`]s: who, from
//! which provider, since and until when, never tokens or claims wholesale.
//! Revocation goes through the store's revoke (which tells every replica)
//! and, in a running doorward, through the directory handle, as a SCIM
//! deactivation does.

pub mod api;
pub mod cli;

use serde::Serialize;

use crate::store::{SessionNames, SessionRecord, SessionSelector, SHOWN_KEY_PREFIX};

/// One session as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionLine {
    /// The start of the store key's hex: enough to name it to `revoke`,
    /// useless as a cookie.
    pub session: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    /// The directory user the login matched (`name:…` or `ext:…`).
    pub directory: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

impl SessionLine {
    pub fn of(record: &SessionRecord) -> Self {
        let names = SessionNames::of(record);
        let mut session = record.key.to_hex();
        session.truncate(SHOWN_KEY_PREFIX);
        Self {
            session,
            provider: record.provider.clone(),
            subject: record.subject.clone(),
            email: names.email,
            preferred_username: names.preferred_username,
            directory: record.match_key.clone(),
            created_at: record.created_at,
            last_seen: record.last_seen,
            expires_at: record.expires_at,
        }
    }

    /// One line of text, tab-separated: session, provider, subject, email,
    /// preferred_username, directory key, created, last seen, expires
    /// (`-` for what is unknown; times in UTC).
    pub fn text(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        [
            self.session.clone(),
            self.provider.clone(),
            self.subject.clone(),
            or_dash(&self.email),
            or_dash(&self.preferred_username),
            or_dash(&self.directory),
            time(self.created_at),
            time(self.last_seen),
            time(self.expires_at),
        ]
        .join("\t")
    }
}

/// The header line of [`SessionLine::text`].
pub const TEXT_HEADER: &str =
    "SESSION\tPROVIDER\tSUBJECT\tEMAIL\tPREFERRED_USERNAME\tDIRECTORY\tCREATED\tLAST_SEEN\tEXPIRES";

/// Unix seconds as RFC 3339 (UTC), or the number if out of range.
fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map_or_else(|| unix.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// What a selector names, for the log line of a revocation (names and
/// prefixes only, as the operator gave them).
pub fn describe(selector: &SessionSelector) -> String {
    let mut parts = Vec::new();
    if let Some(user) = &selector.user {
        parts.push(format!("user={user}"));
    }
    if let Some(provider) = &selector.provider {
        parts.push(format!("provider={provider}"));
    }
    if let Some(session) = &selector.session {
        parts.push(format!("session={session}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionKey;

    #[test]
    fn a_line_shows_names_and_times_but_no_tokens_or_claims() {
        let record = SessionRecord {
            key: SessionKey([0x5a; 32]),
            provider: "okta".into(),
            issuer: "https://idp".into(),
            subject: "00u1".into(),
            sid: Some("idp-session".into()),
            logout_hint: None,
            idp_expires_at: None,
            claims: r#"{"merged":{"email":"a@x","groups":["secret-group"]}}"#.into(),
            tokens: b"refresh-token".to_vec(),
            token_expires_at: None,
            created_at: 0,
            expires_at: 86_400,
            last_seen: 60,
            last_refresh: 0,
            match_key: Some("name:a@x".into()),
        };
        let line = SessionLine::of(&record);
        assert_eq!(line.session, "5a".repeat(8));
        let text = line.text();
        assert_eq!(
            text,
            "5a5a5a5a5a5a5a5a\tokta\t00u1\ta@x\t-\tname:a@x\t1970-01-01T00:00:00Z\t1970-01-01T00:01:00Z\t1970-01-02T00:00:00Z"
        );
        let json = serde_json::to_string(&line).unwrap_or_default();
        for secret in ["secret-group", "refresh-token", "idp-session", &record.key.to_hex()] {
            assert!(!text.contains(secret) && !json.contains(secret), "{secret}");
        }
        assert_eq!(
            describe(&SessionSelector {
                user: Some("a@x".into()),
                provider: Some("okta".into()),
                session: None,
                ..SessionSelector::default()
            }),
            "user=a@x provider=okta"
        );
    }
}
