//! Members doorward keeps in a session's stored claims snapshot beside
//! (never inside) what the IdP sent: the login's authentication, what
//! shared signals said since. Each is read leniently (absent or unreadable
//! is the default), written so that a default value leaves no member, and
//! carried over a token refresh (a refresh is not a new login); an IdP
//! answer that happens to carry a member of that name never decides it.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub trait SnapshotMember: Serialize + DeserializeOwned + Default + PartialEq {
    /// The member's name in the snapshot.
    const MEMBER: &'static str;

    /// The member kept in a stored snapshot (the default if it has none or
    /// it does not parse).
    fn of_snapshot(snapshot: &str) -> Self {
        serde_json::from_str::<serde_json::Value>(snapshot)
            .ok()
            .and_then(|mut v| v.get_mut(Self::MEMBER).map(serde_json::Value::take))
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// `snapshot` with this value as the member (removed when default).
    fn written_into(&self, snapshot: &mut serde_json::Value) {
        if let Some(object) = snapshot.as_object_mut() {
            match serde_json::to_value(self) {
                Ok(member) if *self != Self::default() => {
                    object.insert(Self::MEMBER.into(), member);
                }
                _ => {
                    object.remove(Self::MEMBER);
                }
            }
        }
    }

    /// A refreshed snapshot with the old one's member written over
    /// whatever the IdP's answer carried under that name.
    fn carried_over(old_snapshot: &str, mut fresh: serde_json::Value) -> serde_json::Value {
        Self::of_snapshot(old_snapshot).written_into(&mut fresh);
        fresh
    }
}
