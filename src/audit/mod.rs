//! The audit trail: one event per security-relevant fact (who got in, who
//! was refused and why, who cut whom off, what changed the configuration),
//! apart from the access log. Events are `tracing` events on the target
//! [`TARGET`], emitted with [`audit!`](crate::audit) wherever the fact
//! happens; the audit layer takes them out of the ordinary log and writes
//! them, in Elastic Common Schema, to the audit sink.
//!
//! Every event carries `audit.kind` ([`Kind`]) and some of these fields,
//! always under these names (the layer maps them to ECS):
//! - `provider`: the configured provider's name
//! - `user`: the account as the upstream would see it (`X-Forwarded-User`)
//! - `subject`: the IdP's subject
//! - `session`: [`session_ref`] of a session's store key (never the
//!   cookie, the id or the key itself)
//! - `request_id`: the request's id
//! - `route`: the route's name
//! - `reason`: why (for refusals and failures), never a secret
//! - `rule`: which kind of rule refused (never its contents to the user)
//! - `by`: what ended a session (`logout`, `back_channel`, `saml_slo`,
//!   `scim`, `signal`, `operator`, `reload`, `refresh`, `expiry`)
//! - `count`: how many sessions an action ended
//! - `credential`: the SCIM credential's name; `resource_type`,
//!   `resource_id`, `operation`, `fields` (attribute names, comma-joined;
//!   a list in ECS), `field_count` for SCIM changes
//! - `key`: a config key (weakening switches)
//!
//! No token, cookie, password, secret or assertion is ever a field.

pub mod ecs;
pub mod layer;
pub mod settings;
pub mod sink;
#[cfg(test)]
pub mod testing;

pub use layer::{is_audit, is_audit_or_request, AuditLayer, Selection};
pub use sink::Sink;

/// How an audit event names a session: a hash of its store key, so events
/// of one session can be tied together without the trail holding the key
/// itself (which, like the cookie's id, stays out of every log).
pub fn session_ref(key: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new_with_prefix(b"doorward audit session\0")
        .chain_update(key)
        .finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The `tracing` target audit events are emitted on.
pub const TARGET: &str = "doorward::audit";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LoginSucceeded,
    LoginFailed,
    /// A step-up raised a session (or was refused: see `reason`).
    StepUp,
    /// A user logged out (`by`: logout, back_channel, saml_slo).
    Logout,
    /// Sessions ended by something other than their user (`by`).
    SessionEnded,
    /// The gate refused an admitted-looking caller (`route`, `rule`).
    AccessDenied,
    /// A bearer token was refused (`provider`, `reason`).
    BearerRefused,
    /// A SCIM write (`credential`, `resource_type`, `resource_id`,
    /// `operation`, `fields`).
    ScimChange,
    ConfigReloaded,
    ConfigRefused,
    /// A weakening switch is in force (`key`, `reason`), at start and reload.
    Weakened,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::LoginSucceeded,
        Kind::LoginFailed,
        Kind::StepUp,
        Kind::Logout,
        Kind::SessionEnded,
        Kind::AccessDenied,
        Kind::BearerRefused,
        Kind::ScimChange,
        Kind::ConfigReloaded,
        Kind::ConfigRefused,
        Kind::Weakened,
    ];

    /// The event's name (ECS `event.action`, and the `[audit] events` key).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login-succeeded",
            Self::LoginFailed => "login-failed",
            Self::StepUp => "step-up",
            Self::Logout => "logout",
            Self::SessionEnded => "session-ended",
            Self::AccessDenied => "access-denied",
            Self::BearerRefused => "bearer-refused",
            Self::ScimChange => "scim-change",
            Self::ConfigReloaded => "config-reloaded",
            Self::ConfigRefused => "config-refused",
            Self::Weakened => "weakened",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Emits an audit event: `audit!(Kind::LoginFailed, provider = %name,
/// reason = %why)`. The fields follow `tracing`'s syntax and this
/// module's names.
#[macro_export]
macro_rules! audit {
    ($kind:expr $(, $($fields:tt)*)?) => {
        ::tracing::event!(
            target: $crate::audit::TARGET,
            ::tracing::Level::INFO,
            audit.kind = $crate::audit::Kind::as_str($kind)
            $(, $($fields)*)?
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_name_that_parses_back() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("login"), None);
    }

    #[test]
    fn a_session_is_named_by_a_hash_of_its_key_not_the_key() {
        let key = [7u8; 32];
        let reference = session_ref(&key);
        assert_eq!(reference, session_ref(&key), "the same session, the same name");
        assert_eq!(reference.len(), 24);
        assert!(!"07".repeat(32).contains(&reference));
        assert_ne!(reference, session_ref(&[8u8; 32]));
    }
}
