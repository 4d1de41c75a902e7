//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`, describing exactly what this server does. IdPs and
//! compliance tools build their model of the server from these answers
//! (scim2-tester generates every PATCH it sends from `/Schemas`), so they
//! are derived from the same table the server checks writes against.

use serde_json::{json, Value};

use super::definitions::{Kind, ALL};
use super::errors::ScimError;
use super::list::LIST_URN;

/// `/ServiceProviderConfig`.
pub fn service_provider_config(base: &str, max_results: usize, schemes: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        // Not implemented: an IdP that sees this sends requests one by one.
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": schemes,
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

fn resource_type(base: &str, kind: Kind) -> Value {
    let extensions: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|e| json!({"schema": e.id, "required": false}))
        .collect();
    let mut out = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": kind.endpoint(),
        "description": match kind {
            Kind::User => "User Account",
            Kind::Group => "Group",
        },
        "schema": kind.core().id,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", kind.name())},
    });
    if !extensions.is_empty() {
        out["schemaExtensions"] = Value::Array(extensions);
    }
    out
}

fn listed(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `/ResourceTypes`, or one of them.
pub fn resource_types(base: &str, id: Option<&str>) -> Result<Value, ScimError> {
    let kinds = [Kind::User, Kind::Group];
    match id {
        None => Ok(listed(kinds.iter().map(|k| resource_type(base, *k)).collect())),
        Some(id) => kinds
            .iter()
            .find(|k| k.name().eq_ignore_ascii_case(id))
            .map(|k| resource_type(base, *k))
            .ok_or_else(|| ScimError::NotFound(format!("no resource type `{}`", printable(id)))),
    }
}

/// `/Schemas`, or one of them.
pub fn schemas(base: &str, id: Option<&str>) -> Result<Value, ScimError> {
    let one = |s: &super::definitions::SchemaDef| s.to_json(&format!("{base}/Schemas/{}", s.id));
    match id {
        None => Ok(listed(ALL.iter().map(|s| one(s)).collect())),
        Some(id) => ALL
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .map(|s| one(s))
            .ok_or_else(|| ScimError::NotFound(format!("no schema `{}`", printable(id)))),
    }
}

/// An id from the URL, shortened and without control characters, for a
/// `detail` that repeats it.
pub fn printable(id: &str) -> String {
    id.chars().filter(|c| !c.is_control()).take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_type_names_both_extensions_and_every_schema_is_served() {
        let user = resource_types("http://x", Some("user")).expect("found");
        assert_eq!(user["schemaExtensions"].as_array().map(Vec::len), Some(2));
        let all = schemas("http://x", None).expect("list");
        assert_eq!(all["totalResults"], 4);
        for schema in all["Resources"].as_array().into_iter().flatten() {
            let id = schema["id"].as_str().expect("id");
            assert_eq!(schemas("http://x", Some(id)).expect("one")["id"], id);
        }
        assert!(matches!(
            schemas("http://x", Some("urn:nope")),
            Err(ScimError::NotFound(_))
        ));
        assert!(matches!(
            resource_types("http://x", Some("Device")),
            Err(ScimError::NotFound(_))
        ));
    }

    #[test]
    fn the_config_says_what_is_supported() {
        let config = service_provider_config("http://x", 200, vec![]);
        assert_eq!(config["patch"]["supported"], true);
        assert_eq!(config["bulk"]["supported"], false);
        assert_eq!(config["sort"]["supported"], false);
        assert_eq!(config["etag"]["supported"], true);
        assert_eq!(config["filter"]["maxResults"], 200);
    }
}
