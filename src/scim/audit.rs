//! The audit event of a SCIM write: which credential wrote what (resource
//! type and id, operation) and the names of the attributes it wrote. Never
//! a value: a `password` written by a provisioning client shows up as the
//! field name `password`, nothing more.

use serde_json::{Map, Value};

use super::collection::{Collection, Edit};
use super::definitions::Kind;
use super::patch::Operation;
use crate::respond::Reply;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Replace,
    Patch,
    Delete,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Replace => "replace",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }
}

/// Field names listed per event at most: a write naming more is still
/// audited, with the first ones and a count.
const MAX_FIELDS: usize = 32;

/// Attributes every resource carries that a client does not write.
const NOT_WRITTEN: [&str; 3] = ["schemas", "id", "meta"];

/// Emits one `scim-change` event when `reply` says the write succeeded.
pub fn change<C: Collection>(credential: &str, change: Change, id: Option<&str>, fields: &[String], reply: &Reply) {
    if !reply.status().is_success() {
        return;
    }
    // A created resource's id is in its Location.
    let created = reply
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next());
    let listed = &fields[..fields.len().min(MAX_FIELDS)];
    crate::audit!(
        crate::audit::Kind::ScimChange,
        credential,
        resource_type = match C::KIND {
            Kind::User => "User",
            Kind::Group => "Group",
        },
        resource_id = id.or(created),
        operation = change.as_str(),
        fields = %listed.join(","),
        field_count = fields.len(),
    );
}

/// The attributes a POST body writes: its keys, with an extension's
/// attributes named in full (`urn:…:enterprise:2.0:User:manager`).
pub fn fields_of_resource(resource: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    for (key, value) in resource {
        if NOT_WRITTEN.iter().any(|n| key.eq_ignore_ascii_case(n)) {
            continue;
        }
        match value {
            Value::Object(inner) if key.to_ascii_lowercase().starts_with("urn:") => {
                names.extend(inner.keys().map(|sub| format!("{key}:{sub}")));
            }
            _ => names.push(key.clone()),
        }
    }
    tidy(names)
}

/// The attributes a PUT or PATCH writes: a replacement's keys, or each
/// operation's path (without its value filter, whose literals are data),
/// or, for a path-less operation, the keys of its value.
pub fn fields_of_edit(edit: &Edit) -> Vec<String> {
    match edit {
        Edit::Replace(resource) => fields_of_resource(resource),
        Edit::Patch(operations) => tidy(operations.iter().flat_map(fields_of_operation).collect()),
    }
}

fn fields_of_operation(operation: &Operation) -> Vec<String> {
    match (&operation.path, &operation.value) {
        (Some(path), _) => vec![path.attr.to_string()],
        (None, Some(Value::Object(value))) => fields_of_resource(value),
        (None, _) => Vec::new(),
    }
}

/// Sorted and without repeats, so two writes of the same attributes read
/// the same.
fn tidy(mut names: Vec<String>) -> Vec<String> {
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_created_user_lists_the_names_it_wrote_never_the_values() {
        let fields = fields_of_resource(&object(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "carol@example.com",
            "password": "hunter2-secret",
            "emails": [{"value": "carol@example.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}},
        })));
        assert_eq!(
            fields,
            [
                "emails",
                "password",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "userName"
            ]
        );
        assert!(!fields.join(",").contains("hunter2"));
    }

    #[test]
    fn a_patch_lists_its_paths_without_their_filters() {
        let operations = super::super::patch::parse_request(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "remove", "path": "members[value eq \"2819c223\"]"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@example.com"},
                {"op": "replace", "value": {"active": false, "name.givenName": "C"}},
                {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            ],
        }))
        .expect("a valid PatchOp");
        let fields = fields_of_edit(&Edit::Patch(operations));
        assert_eq!(fields, ["active", "emails.value", "members", "name.givenName"]);
    }
}
