//! Checking and normalising what an IdP writes (a POST or PUT body, or a
//! resource after PATCH operations) against the schema table, before
//! anything is stored: a request either stores a resource that fits the
//! schemas, or stores nothing and says which attribute was wrong.
//!
//! Normal form: attribute names in their schema spelling (`Emails` →
//! `emails`, Entra's `Value` → `value`); no nulls or empty arrays (RFC 7643
//! §2.5: unassigned); `schemas` recomputed from the extensions present.
//! What the IdP may not write is dropped, not stored: read-only attributes
//! (`id`, `meta`, `groups`; Okta sends them back in PUT), the password
//! (write-only, and doorward never keeps one), and attributes no schema
//! here defines (custom extensions doorward does not publish).
//!
//! Leniency for what real IdPs send, each bounded to one meaning:
//! - `"True"`/`"False"` (any case) for booleans: Entra ID without its
//!   `aadOptscim062020` flag;
//! - a bare value for a complex attribute with a `value` sub-attribute
//!   (`"manager": "id"`, roles as a list of strings);
//! - a one-element array for a single-valued attribute (Entra's manager).

use serde_json::{Map, Value};

use super::definitions::{common, Attr, Kind, Mutability};
use super::errors::ScimError;
use super::schema::AttrType;

/// Whether the body must name its core schema (POST and PUT must; a
/// resource after PATCH is the stored one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Body,
    Patched,
}

/// The normal form of a resource of `kind`, or why it does not fit.
pub fn normalise(kind: Kind, input: &Value, source: Source) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(object) = input else {
        return Err(ScimError::InvalidSyntax("a resource is a JSON object".into()));
    };
    let mut out = Map::new();
    let mut named_core = false;
    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") {
            named_core = names_schema(value, kind.core().id)?;
        } else if let Some(extension) = kind.extension(key) {
            let attrs = match value {
                Value::Null => continue,
                Value::Object(members) => attributes(extension.attributes, members, extension.id)?,
                _ => return Err(invalid(extension.id, "is an extension: a JSON object")),
            };
            if !attrs.is_empty() {
                insert(&mut out, extension.id, Value::Object(attrs))?;
            }
        } else if let Some(attr) = kind.core().attr(key).or_else(|| common(key)) {
            if let Some(value) = writable(attr, value)? {
                insert(&mut out, attr.name, value)?;
            }
        } else {
            tracing::debug!(attribute = %key, "scim: dropping an attribute no schema defines");
        }
    }
    if source == Source::Body && !named_core {
        return Err(ScimError::InvalidSyntax(format!(
            "`schemas` must list {}",
            kind.core().id
        )));
    }
    for attr in kind.core().attributes.iter().filter(|a| a.required) {
        match out.get(attr.name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => return Err(ScimError::InvalidValue(format!("`{}` is required", attr.name))),
        }
    }
    let mut schemas = vec![Value::String(kind.core().id.into())];
    schemas.extend(
        kind.extensions()
            .iter()
            .filter(|e| out.contains_key(e.id))
            .map(|e| Value::String(e.id.into())),
    );
    out.insert("schemas".into(), Value::Array(schemas));
    Ok(out)
}

/// The attributes of one object (the core of a resource, an extension,
/// or a complex value): each checked, unknown and read-only ones dropped.
pub(super) fn attributes(
    attrs: &'static [Attr],
    input: &Map<String, Value>,
    within: &str,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in input {
        let Some(attr) = super::definitions::find(attrs, key) else {
            tracing::debug!(attribute = %key, within, "scim: dropping an attribute no schema defines");
            continue;
        };
        if let Some(value) = writable(attr, value)? {
            insert(&mut out, attr.name, value)?;
        }
    }
    Ok(out)
}

/// A value the client may write, normalised; `None` when it is dropped
/// (read-only, write-only) or unassigned (null, empty).
pub fn writable(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    match attr.mutability {
        Mutability::ReadOnly | Mutability::WriteOnly => Ok(None),
        Mutability::ReadWrite | Mutability::Immutable => value_of(attr, value),
    }
}

/// `value` as attribute `attr` holds it (see the module docs).
pub fn value_of(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    if attr.multi {
        let items: Vec<&Value> = match value {
            Value::Null => return Ok(None),
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(item) = single(attr, item)? {
                out.push(item);
            }
        }
        let primaries = out
            .iter()
            .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(invalid(attr.name, "may have one primary value at most"));
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    match value {
        Value::Array(items) if items.is_empty() => Ok(None),
        Value::Array(items) if items.len() == 1 => single(attr, &items[0]),
        Value::Array(_) => Err(invalid(attr.name, "is single-valued")),
        other => single(attr, other),
    }
}

/// One value (an element, for a multi-valued attribute).
fn single(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.ty != AttrType::Complex {
        return scalar(attr, value).map(Some);
    }
    match value {
        Value::Object(members) => {
            let out = attributes(attr.sub, members, attr.name)?;
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        bare => match attr.sub_attr("value") {
            Some(sub) => {
                let mut out = Map::new();
                out.insert(sub.name.into(), scalar(sub, bare)?);
                Ok(Some(Value::Object(out)))
            }
            None => Err(invalid(attr.name, "is complex: a JSON object")),
        },
    }
}

/// A simple value of the attribute's type.
fn scalar(attr: &Attr, value: &Value) -> Result<Value, ScimError> {
    let ok = match (attr.ty, value) {
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => true,
        (AttrType::Boolean, Value::Bool(_)) => true,
        (AttrType::Boolean, Value::String(s)) => {
            return match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(invalid(attr.name, "is a boolean: true or false")),
            };
        }
        (AttrType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (AttrType::Decimal, Value::Number(_)) => true,
        (AttrType::DateTime, Value::String(s)) => super::datetime::parse(s).is_some(),
        _ => false,
    };
    if !ok {
        let expected = match attr.ty {
            AttrType::Boolean => "a boolean",
            AttrType::Integer => "an integer",
            AttrType::Decimal => "a number",
            AttrType::DateTime => "a dateTime such as \"2011-05-13T04:42:34Z\"",
            _ => "a string",
        };
        return Err(invalid(attr.name, &format!("must be {expected}")));
    }
    Ok(value.clone())
}

fn names_schema(schemas: &Value, core: &str) -> Result<bool, ScimError> {
    let Value::Array(items) = schemas else {
        return Err(ScimError::InvalidSyntax("`schemas` is an array of URIs".into()));
    };
    let mut named = false;
    for item in items {
        let Value::String(uri) = item else {
            return Err(ScimError::InvalidSyntax("`schemas` is an array of URIs".into()));
        };
        named |= uri.eq_ignore_ascii_case(core);
    }
    Ok(named)
}

fn insert(out: &mut Map<String, Value>, name: &str, value: Value) -> Result<(), ScimError> {
    if out.insert(name.to_string(), value).is_some() {
        return Err(ScimError::InvalidSyntax(format!(
            "`{name}` is given twice (attribute names ignore case)"
        )));
    }
    Ok(())
}

fn invalid(name: &str, what: &str) -> ScimError {
    ScimError::InvalidValue(format!("`{name}` {what}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::directory::DOORWARD_USER_SCHEMA;
    use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};

    fn user(body: Value) -> Result<Value, ScimError> {
        normalise(Kind::User, &body, Source::Body).map(Value::Object)
    }

    #[test]
    fn okta_create_bodies_lose_the_password_and_read_only_attributes() {
        let out = user(json!({
            "schemas": [USER_URN], "userName": "test.user@okta.local", "password": "1mz050nq",
            "groups": [], "id": "ignored", "meta": {"resourceType": "User"}, "active": true,
            "name": {"givenName": "Test", "familyName": "User"}, "locale": "en-US",
        }))
        .expect("valid");
        assert_eq!(out.get("password"), None);
        assert_eq!(out.get("id"), None);
        assert_eq!(out.get("groups"), None);
        assert_eq!(out["name"]["givenName"], "Test");
        assert_eq!(out["schemas"], json!([USER_URN]));
    }

    #[test]
    fn entra_strings_nulls_and_capitals_are_normalised() {
        let out = user(json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN], "userName": "u", "active": "False",
            "Emails": [{"Value": "u@x.test", "type": "work", "primary": "True"}],
            "addresses": null, "title": null, "roles": [],
            ENTERPRISE_USER_URN: {"manager": [{"$ref": null, "value": "m1"}], "department": null},
        }))
        .expect("valid");
        assert_eq!(out["active"], false);
        assert_eq!(
            out["emails"],
            json!([{"value": "u@x.test", "type": "work", "primary": true}])
        );
        assert_eq!(out.get("addresses"), None);
        assert_eq!(out.get("roles"), None);
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"manager": {"value": "m1"}}));
        assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
    }

    #[test]
    fn bare_values_become_complex_values() {
        let out = user(json!({
            "schemas": [USER_URN], "userName": "u",
            ENTERPRISE_USER_URN: {"manager": "m1"},
            DOORWARD_USER_SCHEMA: {"roles": ["admin", {"value": "editor"}]},
        }))
        .expect("valid");
        assert_eq!(out[ENTERPRISE_USER_URN]["manager"], json!({"value": "m1"}));
        assert_eq!(
            out[DOORWARD_USER_SCHEMA]["roles"],
            json!([{"value": "admin"}, {"value": "editor"}])
        );
        assert_eq!(
            out["schemas"],
            json!([USER_URN, ENTERPRISE_USER_URN, DOORWARD_USER_SCHEMA])
        );
    }

    #[test]
    fn refusals_name_the_attribute_and_the_scim_type() {
        let cases = [
            (json!({"schemas": [USER_URN]}), "invalidValue", "userName"),
            (
                json!({"schemas": [USER_URN], "userName": "  "}),
                "invalidValue",
                "userName",
            ),
            (json!({"userName": "u"}), "invalidSyntax", "schemas"),
            (json!({"schemas": "x", "userName": "u"}), "invalidSyntax", "schemas"),
            (
                json!({"schemas": [USER_URN], "userName": 7}),
                "invalidValue",
                "userName",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "u", "active": "yes"}),
                "invalidValue",
                "active",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "u", "name": "x"}),
                "invalidValue",
                "name",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "u", "title": ["a", "b"]}),
                "invalidValue",
                "title",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "u", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                "invalidValue",
                "emails",
            ),
            (
                json!({"schemas": [USER_URN], "userName": "u", "username": "v"}),
                "invalidSyntax",
                "twice",
            ),
            (json!([1]), "invalidSyntax", "object"),
        ];
        for (body, scim_type, mentions) in cases {
            let error = user(body.clone()).expect_err(&body.to_string());
            assert_eq!(error.scim_type(), Some(scim_type), "{body}: {error}");
            assert!(error.to_string().contains(mentions), "{body}: {error}");
        }
    }

    #[test]
    fn unknown_attributes_and_extensions_are_dropped() {
        let out = user(json!({
            "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:Custom:2.0:User"],
            "userName": "u", "favouriteColour": "blue",
            "urn:ietf:params:scim:schemas:extension:Custom:2.0:User": {"tag": "x"},
            "name": {"givenName": "A", "nick": "x"},
        }))
        .expect("valid");
        assert_eq!(out.as_object().map(Map::len), Some(3), "{out}");
        assert_eq!(out["name"], json!({"givenName": "A"}));
    }

    #[test]
    fn groups_need_a_display_name_and_keep_members_for_the_caller() {
        let group = normalise(
            Kind::Group,
            &json!({"schemas": [crate::scim::GROUP_URN], "displayName": "Eng",
                    "members": [{"value": "u1", "$ref": null, "display": "ignored"}]}),
            Source::Body,
        )
        .expect("valid");
        assert_eq!(group["members"], json!([{"value": "u1"}]));
        let error = normalise(Kind::Group, &json!({"schemas": [crate::scim::GROUP_URN]}), Source::Body)
            .expect_err("no displayName");
        assert_eq!(error.scim_type(), Some("invalidValue"));
    }
}
