//! A group's members as a PATCH or PUT changes them. Members are rows in
//! the store, not part of the group's JSON, so operations on `members`
//! become a [`MemberChange`]: additions and removals (which commute, so
//! concurrent PATCHes adding different users to one group lose none), or
//! a whole new list (PUT, `replace members`, `remove members` without a
//! value).
//!
//! What IdPs send, all handled here:
//! - Okta: `remove members[value eq "id"]` then `add members [...]` in one
//!   PATCH; `replace members [...]` for a full push;
//! - Entra ID: `Add`/`Remove` with `path: "members"` and a value list
//!   (`"$ref": null`): a remove *with* a value removes those members only.

use serde_json::{json, Value};

use super::definitions::Kind;
use super::errors::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::store::directory::MemberChange;

/// A current member: user id and userName.
pub type Member = (String, String);

/// The member ids in a `members` value (a list of `{"value": id}`, or of
/// bare ids; `$ref` and `display` are the server's to say). Groups do not
/// nest: a member of another `type` is refused.
pub fn ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.iter().filter(|i| !i.is_null()).collect(),
        single => vec![single],
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(id) => Some(id),
            Value::Object(fields) => {
                let field = |name: &str| super::find_key(fields, name).and_then(|k| fields[k].as_str());
                if let Some(kind) = field("type") {
                    if !kind.eq_ignore_ascii_case("User") {
                        return Err(ScimError::InvalidValue(format!(
                            "members of type `{kind}` are not supported: groups do not nest"
                        )));
                    }
                }
                match super::find_key(fields, "value").map(|k| &fields[k]) {
                    Some(Value::String(id)) => Some(id),
                    _ => None,
                }
            }
            _ => None,
        };
        match id {
            Some(id) if !id.is_empty() => {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
            _ => {
                return Err(ScimError::InvalidValue(
                    "each member needs a `value` (a user id)".into(),
                ))
            }
        }
    }
    Ok(ids)
}

/// The members change a request builds, operation by operation.
#[derive(Debug)]
pub struct MemberPlan {
    /// The stored members, when the request needs them (filters).
    current: Option<Vec<Member>>,
    change: MemberChange,
}

impl MemberPlan {
    pub fn new(current: Option<Vec<Member>>) -> Self {
        Self {
            current,
            change: MemberChange::None,
        }
    }

    pub fn add(&mut self, ids: Vec<String>) {
        match &mut self.change {
            MemberChange::Set(list) => push_new(list, ids),
            MemberChange::Edit { add, remove } => {
                remove.retain(|r| !ids.contains(r));
                push_new(add, ids);
            }
            MemberChange::None => {
                self.change = MemberChange::Edit {
                    add: ids,
                    remove: Vec::new(),
                }
            }
        }
    }

    pub fn remove(&mut self, ids: Vec<String>) {
        match &mut self.change {
            MemberChange::Set(list) => list.retain(|m| !ids.contains(m)),
            MemberChange::Edit { add, remove } => {
                add.retain(|a| !ids.contains(a));
                push_new(remove, ids);
            }
            MemberChange::None => {
                self.change = MemberChange::Edit {
                    add: Vec::new(),
                    remove: ids,
                }
            }
        }
    }

    pub fn set(&mut self, ids: Vec<String>) {
        self.change = MemberChange::Set(ids);
    }

    /// Removes the members a value filter selects (`members[value eq "x"]`).
    /// `value eq` needs no lookup; other filters are evaluated against the
    /// members as the operations so far left them.
    pub fn remove_matching(&mut self, filter: &Filter) -> Result<(), ScimError> {
        if let Filter::Compare(path, CompareOp::Eq, CompValue::String(id)) = filter {
            if path.uri.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case("value") {
                self.remove(vec![id.clone()]);
                return Ok(());
            }
        }
        let members = self.now()?;
        let elements: Vec<Value> = members
            .iter()
            .map(|(id, name)| json!({"value": id, "display": name, "type": "User"}))
            .collect();
        let schema = super::definitions::KindSchema(Kind::Group);
        let chosen = super::matching_indexes(&elements, &AttrPath::new("members"), filter, &schema)?;
        let ids = chosen
            .into_iter()
            .filter_map(|i| members.get(i))
            .map(|(id, _)| id.clone())
            .collect();
        self.remove(ids);
        Ok(())
    }

    /// The members now, as far as this plan can tell (for filters).
    fn now(&self) -> Result<Vec<Member>, ScimError> {
        let current = self
            .current
            .clone()
            .ok_or_else(|| ScimError::InvalidFilter("this members filter cannot be evaluated here".into()))?;
        Ok(match &self.change {
            MemberChange::None => current,
            MemberChange::Set(list) => list.iter().map(|id| (id.clone(), name_of(&current, id))).collect(),
            MemberChange::Edit { add, remove } => {
                let mut now: Vec<Member> = current.iter().filter(|(id, _)| !remove.contains(id)).cloned().collect();
                for id in add {
                    if !now.iter().any(|(m, _)| m == id) {
                        now.push((id.clone(), name_of(&current, id)));
                    }
                }
                now
            }
        })
    }

    pub fn into_change(self) -> MemberChange {
        match self.change {
            MemberChange::Edit { add, remove } if add.is_empty() && remove.is_empty() => MemberChange::None,
            other => other,
        }
    }
}

fn name_of(members: &[Member], id: &str) -> String {
    members
        .iter()
        .find(|(m, _)| m == id)
        .map(|(_, n)| n.clone())
        .unwrap_or_default()
}

fn push_new(list: &mut Vec<String>, ids: Vec<String>) {
    for id in ids {
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

/// Whether filter `f` can only be evaluated against the stored members
/// (anything but `value eq "id"`).
pub fn needs_current(f: &Filter) -> bool {
    !matches!(f, Filter::Compare(p, CompareOp::Eq, CompValue::String(_))
        if p.uri.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of(v: Value) -> Vec<String> {
        ids(&v).expect("valid members")
    }

    #[test]
    fn member_values_come_as_objects_or_bare_ids_and_never_as_groups() {
        assert_eq!(
            ids_of(json!([{"$ref": null, "value": "a"}, {"value": "b", "display": "x"}, "c", {"value": "a"}])),
            ["a", "b", "c"]
        );
        assert!(ids_of(json!(null)).is_empty());
        let nested = ids(&json!([{"value": "g", "type": "Group"}])).expect_err("no nesting");
        assert_eq!(nested.scim_type(), Some("invalidValue"));
        assert_eq!(
            ids(&json!([{"display": "x"}])).map_err(|e| e.scim_type()),
            Err(Some("invalidValue"))
        );
    }

    #[test]
    fn okta_remove_then_add_is_one_edit() {
        let mut plan = MemberPlan::new(None);
        plan.remove_matching(&Filter::parse(r#"value eq "old""#).expect("filter"))
            .expect("no lookup needed");
        plan.add(vec!["new".into()]);
        assert_eq!(
            plan.into_change(),
            MemberChange::Edit {
                add: vec!["new".into()],
                remove: vec!["old".into()]
            }
        );
    }

    #[test]
    fn later_operations_undo_earlier_ones_and_set_absorbs_edits() {
        let mut plan = MemberPlan::new(None);
        plan.add(vec!["a".into(), "b".into()]);
        plan.remove(vec!["a".into()]);
        assert_eq!(
            plan.into_change(),
            MemberChange::Edit {
                add: vec!["b".into()],
                remove: vec!["a".into()]
            }
        );
        let mut plan = MemberPlan::new(None);
        plan.set(vec!["a".into()]);
        plan.add(vec!["b".into()]);
        plan.remove(vec!["a".into()]);
        assert_eq!(plan.into_change(), MemberChange::Set(vec!["b".into()]));
        let mut plan = MemberPlan::new(None);
        plan.add(vec![]);
        assert_eq!(plan.into_change(), MemberChange::None);
    }

    #[test]
    fn other_filters_are_evaluated_against_the_members_as_they_stand() {
        let current = vec![
            ("u1".to_string(), "alice".to_string()),
            ("u2".to_string(), "bob".to_string()),
        ];
        let mut plan = MemberPlan::new(Some(current));
        plan.add(vec!["u3".into()]);
        let filter = Filter::parse(r#"display eq "BOB" or value eq "u3""#).expect("filter");
        assert!(needs_current(&filter));
        plan.remove_matching(&filter).expect("evaluated");
        assert_eq!(
            plan.into_change(),
            MemberChange::Edit {
                add: vec![],
                remove: vec!["u2".into(), "u3".into()]
            }
        );
        let mut blind = MemberPlan::new(None);
        assert_eq!(
            blind.remove_matching(&filter).map_err(|e| e.scim_type()),
            Err(Some("invalidFilter"))
        );
    }
}
