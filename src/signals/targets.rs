//! Which sessions and accounts a SET's subject names, within the one
//! provider its transmitter is bound to. Facts carry their source: an
//! `email` subject reaches that provider's sessions with that email, never
//! another provider's user who has the same address; an `iss_sub` subject
//! must name the issuer the session was made under.

use super::subject::{Subject, SubjectId};
use crate::store::signals::AccountId;
use crate::store::SessionSelector;

/// One way the subject names a user (or one of their sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The sessions it names.
    pub sessions: SessionSelector,
    /// How the account is named for the account states (none for a
    /// session named without its user).
    pub account: Option<(&'static str, String)>,
}

impl Target {
    pub fn account_id<'a>(&'a self, provider: &'a str) -> Option<AccountId<'a>> {
        self.account
            .as_ref()
            .map(|(kind, value)| AccountId { provider, kind, value })
    }
}

/// The targets of `subject` among `provider`'s sessions; empty when no
/// identifier in it is one doorward can match (the caller logs it).
pub fn targets(subject: &Subject, provider: &str) -> Vec<Target> {
    let sid = match &subject.session {
        Some(SubjectId::Opaque(sid)) => Some(sid.clone()),
        // A session named some other way cannot be matched: never widen
        // it to all the user's sessions.
        Some(_) => return Vec::new(),
        None => None,
    };
    let mut found = Vec::new();
    match &subject.user {
        Some(user) => user_targets(user, &mut found),
        None if sid.is_some() => found.push(Target {
            sessions: SessionSelector::default(),
            account: None,
        }),
        None => {}
    }
    for target in &mut found {
        target.sessions.provider = Some(provider.to_string());
        target.sessions.sid.clone_from(&sid);
        if sid.is_some() {
            // An event about one session says nothing of the account.
            target.account = None;
        }
    }
    found
}

fn user_targets(id: &SubjectId, found: &mut Vec<Target>) {
    let (sessions, account) = match id {
        SubjectId::IssSub { iss, sub } => (
            SessionSelector {
                subject: Some(sub.clone()),
                issuer: Some(iss.clone()),
                ..SessionSelector::default()
            },
            // The account too is the issuer's: a subject from another
            // issuer never closes this provider's user of the same `sub`.
            ("iss_sub", crate::store::signals::iss_sub_value(iss, sub)),
        ),
        SubjectId::Opaque(sub) => (
            SessionSelector {
                subject: Some(sub.clone()),
                ..SessionSelector::default()
            },
            ("sub", sub.clone()),
        ),
        SubjectId::Email(email) => (
            SessionSelector {
                email: Some(email.clone()),
                ..SessionSelector::default()
            },
            ("email", email.to_lowercase()),
        ),
        SubjectId::Aliases(aliases) => {
            for alias in aliases {
                user_targets(alias, found);
            }
            return;
        }
        // Phone numbers, accounts, DIDs and URIs name nobody doorward
        // keeps sessions by.
        _ => return,
    };
    found.push(Target {
        sessions,
        account: Some(account),
    });
}
