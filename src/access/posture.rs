//! What shared signals said about a session after its login: the
//! assurance level (CAEP `assurance-level-change`), whether its device is
//! compliant (CAEP `device-compliance-change`), and when its claims last
//! changed (CAEP `token-claims-change`). It lives in the session's stored
//! claims snapshot under `signals`, beside (never inside) the IdP's claims,
//! so an IdP claim cannot forge it, and a change reaches every replica the
//! way any change of a session does: the record is rewritten and the
//! session derived again. Each part keeps its event's time, so an older
//! event arriving late never undoes a newer one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posture {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assurance: Option<Assurance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceCompliance>,
    /// When the newest `token-claims-change` applied happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_changed_at: Option<i64>,
}

/// An assurance level a signal reported (`nist-aal2`, an `acr` value...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assurance {
    pub namespace: String,
    pub level: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCompliance {
    pub compliant: bool,
    pub at: i64,
}

/// What a route asks of a session's posture.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostureRule<'a> {
    /// Levels accepted when a signal reported one (empty: any).
    pub assurance: &'a [String],
    /// Refuse a device a signal called not compliant.
    pub compliant_device: bool,
}

/// The posture of a session with no signal about it.
pub static NONE: Posture = Posture {
    assurance: None,
    device: None,
    claims_changed_at: None,
};

impl Posture {
    /// Why this posture falls short of `rule`, if it does. A session no
    /// signal spoke of passes: its login was the IdP's decision.
    pub fn shortfall(&self, rule: PostureRule<'_>) -> Option<String> {
        if rule.compliant_device && self.device.as_ref().is_some_and(|d| !d.compliant) {
            return Some("a shared signal reported the device not compliant".into());
        }
        match &self.assurance {
            Some(a)
                if !rule.assurance.is_empty() && !rule.assurance.iter().any(|l| l.eq_ignore_ascii_case(&a.level)) =>
            {
                Some(format!("a shared signal lowered the assurance level to `{}`", a.level))
            }
            _ => None,
        }
    }
}

/// Kept in the session's claims snapshot under `signals`.
impl crate::snapshot_member::SnapshotMember for Posture {
    const MEMBER: &'static str = "signals";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot_member::SnapshotMember;

    #[test]
    fn a_posture_round_trips_through_the_snapshot_beside_the_claims() {
        let mut snapshot = serde_json::json!({"merged": {"sub": "a"}});
        assert_eq!(Posture::of_snapshot(&snapshot.to_string()), Posture::default());
        let posture = Posture {
            assurance: Some(Assurance {
                namespace: "NIST-AAL".into(),
                level: "nist-aal1".into(),
                at: 5,
            }),
            device: Some(DeviceCompliance {
                compliant: false,
                at: 6,
            }),
            claims_changed_at: None,
        };
        posture.written_into(&mut snapshot);
        assert_eq!(snapshot["merged"]["sub"], "a");
        assert_eq!(Posture::of_snapshot(&snapshot.to_string()), posture);
        // A refresh keeps it, and an IdP claim named like it is dropped.
        let fresh = serde_json::json!({"merged": {"sub": "a"}, "signals": {"device": {"compliant": true, "at": 9}}});
        let carried = Posture::carried_over(&snapshot.to_string(), fresh);
        assert_eq!(Posture::of_snapshot(&carried.to_string()), posture);
        assert_eq!(Posture::of_snapshot("not json"), Posture::default());
    }

    #[test]
    fn only_what_a_signal_reported_falls_short() {
        let levels = ["nist-aal2".to_string(), "nist-aal3".to_string()];
        let rule = PostureRule {
            assurance: &levels,
            compliant_device: true,
        };
        assert_eq!(NONE.shortfall(rule), None, "no signal, the login decided");
        let mut p = Posture {
            assurance: Some(Assurance {
                namespace: "NIST-AAL".into(),
                level: "NIST-AAL2".into(),
                at: 1,
            }),
            ..Posture::default()
        };
        assert_eq!(p.shortfall(rule), None);
        if let Some(a) = p.assurance.as_mut() {
            a.level = "nist-aal1".into();
        }
        assert_eq!(
            p.shortfall(rule).as_deref(),
            Some("a shared signal lowered the assurance level to `nist-aal1`")
        );
        assert_eq!(p.shortfall(PostureRule::default()), None, "a route without the keys");
        p.assurance = None;
        p.device = Some(DeviceCompliance {
            compliant: false,
            at: 2,
        });
        assert_eq!(
            p.shortfall(rule).as_deref(),
            Some("a shared signal reported the device not compliant")
        );
        p.device = Some(DeviceCompliance { compliant: true, at: 3 });
        assert_eq!(p.shortfall(rule), None);
    }
}
