//! Stored rows as SCIM resources: the stored JSON plus what the server
//! owns (`id`, `meta`, a user's `groups`, a group's `members`), then cut to
//! what the client asked for with `attributes` / `excludedAttributes`
//! (RFC 7644 §3.9).

use serde_json::{json, Map, Value};

use super::definitions::{Kind, Returned};
use super::errors::ScimError;
use super::path::PatchPath;
use super::reply::etag;
use crate::store::directory::{DirGroup, DirUser};
use crate::store::StoreError;

/// RFC 3339 in UTC, whole seconds (the clock's resolution).
pub fn timestamp(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The stored JSON of a row.
pub fn stored(resource: &str) -> Result<Map<String, Value>, ScimError> {
    match serde_json::from_str(resource) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::Corrupt("a directory resource is not a JSON object".into()).into()),
    }
}

fn meta(kind: Kind, base: &str, id: &str, created: i64, modified: i64, version: i64) -> Value {
    json!({
        "resourceType": kind.name(),
        "created": timestamp(created),
        "lastModified": timestamp(modified),
        "location": format!("{base}{}/{id}", kind.endpoint()),
        "version": etag(version),
    })
}

/// A user; `groups` as (id, displayName) when they were loaded.
pub fn user(base: &str, row: &DirUser, groups: Option<&[(String, String)]>) -> Result<Map<String, Value>, ScimError> {
    let mut out = stored(&row.resource)?;
    out.insert("id".into(), json!(row.id));
    out.insert(
        "meta".into(),
        meta(Kind::User, base, &row.id, row.created, row.modified, row.version),
    );
    if let Some(groups) = groups.filter(|g| !g.is_empty()) {
        let groups: Vec<Value> = groups
            .iter()
            .map(|(id, name)| json!({"value": id, "$ref": format!("{base}/Groups/{id}"), "display": name, "type": "direct"}))
            .collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    Ok(out)
}

/// A group; `members` as (id, userName) when they were loaded, with
/// `display` only when asked for (it is `returned: request`).
pub fn group(
    base: &str,
    row: &DirGroup,
    members: Option<&[(String, String)]>,
    display: bool,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = stored(&row.resource)?;
    out.insert("id".into(), json!(row.id));
    out.insert(
        "meta".into(),
        meta(Kind::Group, base, &row.id, row.created, row.modified, row.version),
    );
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        let members: Vec<Value> = members
            .iter()
            .map(|(id, name)| {
                let mut member = json!({"value": id, "$ref": format!("{base}/Users/{id}"), "type": "User"});
                if display {
                    member["display"] = json!(name);
                }
                member
            })
            .collect();
        out.insert("members".into(), Value::Array(members));
    }
    Ok(out)
}

/// One entry of `attributes` / `excludedAttributes`: where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    /// The extension URN, for an extension's attribute or the whole extension.
    ext: Option<&'static str>,
    /// `None`: the whole extension.
    name: Option<String>,
    sub: Option<String>,
}

/// `attributes` and `excludedAttributes` of a request.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    include: Vec<Named>,
    exclude: Vec<Named>,
}

impl Projection {
    /// From the two parameters' comma-separated values.
    pub fn parse(kind: Kind, attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        Ok(Self {
            include: names(kind, attributes)?,
            exclude: names(kind, excluded)?,
        })
    }

    /// From a request's query parameters (names ignore case).
    pub fn from_params(kind: Kind, params: &[(String, String)]) -> Result<Self, ScimError> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Self::parse(kind, get("attributes"), get("excludedAttributes"))
    }

    /// Whether the client asked for either parameter.
    pub fn is_set(&self) -> bool {
        !self.include.is_empty() || !self.exclude.is_empty()
    }

    /// Whether the answer will hold the core attribute `name` (to skip
    /// loading a user's groups or a group's members).
    pub fn wants(&self, name: &str) -> bool {
        let hit = |n: &Named| n.ext.is_none() && n.name.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(name));
        if !self.include.is_empty() {
            return self.include.iter().any(hit);
        }
        !self.exclude.iter().any(|n| hit(n) && n.sub.is_none())
    }

    /// Whether `name`'s sub-attribute `sub` (returned on request) was asked for.
    pub fn requests(&self, name: &str, sub: &str) -> bool {
        self.include.iter().any(|n| {
            n.ext.is_none()
                && n.name.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(name))
                && n.sub.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(sub))
        })
    }

    /// Cuts a rendered resource down as asked; `id` and `schemas` stay
    /// (`returned: always`).
    pub fn apply(&self, kind: Kind, mut resource: Map<String, Value>) -> Map<String, Value> {
        if !self.include.is_empty() {
            let mut out = Map::new();
            for key in ["schemas", "id"] {
                if let Some(v) = resource.remove(key) {
                    out.insert(key.into(), v);
                }
            }
            for named in &self.include {
                copy(&resource, &mut out, named);
            }
            resource = out;
        }
        for named in &self.exclude {
            let always = named.ext.is_none()
                && named.name.as_deref().is_some_and(|n| {
                    kind.core_attr(n).is_some_and(|a| a.returned == Returned::Always)
                        || n.eq_ignore_ascii_case("schemas")
                });
            if !always {
                drop_named(&mut resource, named);
            }
        }
        resource
    }
}

fn names(kind: Kind, list: Option<&str>) -> Result<Vec<Named>, ScimError> {
    let mut out = Vec::new();
    for item in list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let path = PatchPath::parse(item)?;
        if path.filter.is_some() {
            return Err(ScimError::InvalidValue(format!("`{item}`: attributes take no filter")));
        }
        let attr = path.attr;
        let whole = attr
            .uri
            .as_ref()
            .and_then(|uri| kind.extension(&format!("{uri}:{}", attr.name)));
        out.push(match (whole, attr.uri.as_deref()) {
            (Some(ext), _) if attr.sub.is_none() => Named {
                ext: Some(ext.id),
                name: None,
                sub: None,
            },
            (_, Some(uri)) if !uri.eq_ignore_ascii_case(kind.core().id) => Named {
                // An unknown URN selects nothing, as an unknown name does.
                ext: Some(kind.extension(uri).map_or("", |e| e.id)),
                name: Some(attr.name),
                sub: attr.sub,
            },
            _ => Named {
                ext: None,
                name: Some(attr.name),
                sub: attr.sub,
            },
        });
    }
    Ok(out)
}

/// The object `named` lives in: the resource, or an extension object.
fn place<'a>(resource: &'a Map<String, Value>, named: &Named) -> Option<&'a Map<String, Value>> {
    match named.ext {
        None => Some(resource),
        Some(ext) => resource.get(ext).and_then(Value::as_object),
    }
}

fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, named: &Named) {
    let Some(source) = place(from, named) else { return };
    let Some(name) = &named.name else {
        if let Some(ext) = named.ext.and_then(|e| from.get(e)) {
            to.insert(named.ext.unwrap_or_default().to_string(), ext.clone());
        }
        return;
    };
    let Some(key) = super::find_key(source, name) else {
        return;
    };
    let value = match (&named.sub, &source[key]) {
        (None, value) => value.clone(),
        (Some(sub), Value::Array(items)) => Value::Array(items.iter().filter_map(|i| only(i, sub)).collect()),
        (Some(sub), item) => match only(item, sub) {
            Some(v) => v,
            None => return,
        },
    };
    let target = match named.ext {
        None => to,
        Some(ext) => match to.entry(ext).or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(map) => map,
            _ => return,
        },
    };
    match (target.get_mut(key), value) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (Some(Value::Array(old)), Value::Array(new)) if old.len() == new.len() => {
            for (o, n) in old.iter_mut().zip(new) {
                if let (Value::Object(o), Value::Object(n)) = (o, n) {
                    o.extend(n);
                }
            }
        }
        (_, value) => {
            target.insert(key.clone(), value);
        }
    }
}

/// `{sub: item[sub]}` when the item has it.
fn only(item: &Value, sub: &str) -> Option<Value> {
    let fields = item.as_object()?;
    let key = super::find_key(fields, sub)?;
    Some(Value::Object(Map::from_iter([(key.clone(), fields[key].clone())])))
}

fn drop_named(resource: &mut Map<String, Value>, named: &Named) {
    let target = match named.ext {
        None => resource,
        Some(ext) => {
            if named.name.is_none() {
                resource.remove(ext);
                return;
            }
            match resource.get_mut(ext) {
                Some(Value::Object(map)) => map,
                _ => return,
            }
        }
    };
    let Some(name) = &named.name else { return };
    let Some(key) = super::find_key(target, name).cloned() else {
        return;
    };
    match &named.sub {
        None => {
            target.remove(&key);
        }
        Some(sub) => match target.get_mut(&key) {
            Some(Value::Array(items)) => items.iter_mut().for_each(|i| remove_sub(i, sub)),
            Some(item) => remove_sub(item, sub),
            None => {}
        },
    }
}

fn remove_sub(item: &mut Value, sub: &str) {
    if let Value::Object(fields) = item {
        if let Some(key) = super::find_key(fields, sub).cloned() {
            fields.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::ENTERPRISE_USER_URN;

    fn bjensen() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
            "id": "u1", "userName": "bjensen", "displayName": "Babs",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x.test", "type": "work"}, {"value": "b@y.test", "type": "home"}],
            ENTERPRISE_USER_URN: {"employeeNumber": "7", "department": "Tours"},
            "meta": {"resourceType": "User", "version": "W/\"1\""},
        }) else {
            unreachable!()
        };
        map
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let p = Projection::parse(Kind::User, attributes, excluded).expect("valid");
        Value::Object(p.apply(Kind::User, bjensen()))
    }

    #[test]
    fn attributes_keep_id_and_schemas_and_what_was_named() {
        let out = project(Some("userName,NAME.givenName,emails.value"), None);
        assert_eq!(
            out,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
                "id": "u1", "userName": "bjensen", "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@x.test"}, {"value": "b@y.test"}],
            })
        );
        let out = project(Some(&format!("{ENTERPRISE_USER_URN}:department")), None);
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"department": "Tours"}));
        let out = project(Some(ENTERPRISE_USER_URN), None);
        assert_eq!(out[ENTERPRISE_USER_URN]["employeeNumber"], "7");
        let out = project(Some("emails.value,emails.type"), None);
        assert_eq!(out["emails"][1], json!({"value": "b@y.test", "type": "home"}));
    }

    #[test]
    fn excluded_attributes_go_but_id_and_schemas_stay() {
        let out = project(None, Some("emails,name.familyName,id,schemas,meta"));
        assert!(out.get("emails").is_none() && out.get("meta").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["id"], "u1");
        assert!(out.get("schemas").is_some());
        let out = project(None, Some(&format!("{ENTERPRISE_USER_URN}:employeeNumber")));
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"department": "Tours"}));
    }

    #[test]
    fn what_to_load_follows_the_projection() {
        let p = Projection::parse(Kind::Group, None, Some("members")).expect("valid");
        assert!(!p.wants("members"));
        let p = Projection::parse(Kind::Group, Some("displayName"), None).expect("valid");
        assert!(!p.wants("members"));
        let p = Projection::parse(Kind::Group, Some("members.display"), None).expect("valid");
        assert!(p.wants("members") && p.requests("members", "display"));
        let p = Projection::default();
        assert!(p.wants("members") && !p.requests("members", "display"));
        let bad = Projection::parse(Kind::User, Some("emails[type eq \"work\"]"), None).expect_err("filter");
        assert_eq!(bad.scim_type(), Some("invalidValue"));
    }
}
