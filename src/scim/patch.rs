//! PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove` applied to a
//! stored resource, with or without a `path`, in the dialects real IdPs
//! speak. The result is checked like a PUT body afterwards
//! ([`super::resource::normalise`]), so a PATCH can store nothing a PUT
//! could not; and operations apply to a copy, so a failing operation
//! leaves nothing half-applied.
//!
//! Paths resolve against the schema table first (unknown attribute:
//! `invalidPath`; read-only: `mutability`), so edits always land on the
//! schema's spelling of a name. Accepted beyond the letter of the RFC:
//! - `op` in any case (Entra ID's `Replace`, `Add`, `Remove`);
//! - a path-less `add`/`replace` whose value keys are paths (Entra's
//!   `"name.givenName"`, URN-qualified extension attributes), and whose
//!   `id` equals the resource's (Okta; a different `id` is `mutability`);
//! - extension attributes without their URN (`manager`, `employeeNumber`,
//!   from older Entra samples) when no core attribute has that name;
//! - `replace`/`add` through a filter that matches nothing, when the
//!   filter is a conjunction of `eq` (Entra's `emails[type eq
//!   "work"].value` for a user without a work email): the element is made;
//! - `remove` with a value list on a multi-valued attribute removes those
//!   values (Entra's member removal), and a `remove` that matches nothing
//!   succeeds (removal is idempotent for IdPs that retry).
//!
//! Group `members` are not edited here but collected in a
//! [`MemberPlan`](super::members::MemberPlan).

use serde_json::{Map, Value};

use super::definitions::{find, Attr, Kind, KindSchema, Mutability, SchemaDef};
use super::errors::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::members::{self, MemberPlan};
use super::path::PatchPath;
use super::resource::value_of;

/// `urn:ietf:params:scim:api:messages:2.0:PatchOp`
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Reads a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(request) = body else {
        return Err(ScimError::InvalidSyntax("a PATCH body is a JSON object".into()));
    };
    let field = |name: &str| find_field(request, name);
    let schemas_ok = field("schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_URN)))
    });
    if !schemas_ok {
        return Err(ScimError::InvalidSyntax(format!(
            "`schemas` must be [\"{PATCH_OP_URN}\"]"
        )));
    }
    let Some(Value::Array(items)) = field("Operations") else {
        return Err(ScimError::InvalidSyntax("`Operations` must be an array".into()));
    };
    items.iter().map(operation).collect()
}

fn operation(item: &Value) -> Result<Operation, ScimError> {
    let Value::Object(item) = item else {
        return Err(ScimError::InvalidSyntax("each operation is a JSON object".into()));
    };
    let op = match find_field(item, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        Some(op) if op == "add" => Op::Add,
        Some(op) if op == "remove" => Op::Remove,
        Some(op) if op == "replace" => Op::Replace,
        _ => return Err(ScimError::InvalidSyntax("`op` must be add, remove or replace".into())),
    };
    let path = match find_field(item, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(PatchPath::parse(p)?),
        Some(_) => return Err(ScimError::InvalidPath("`path` must be a string".into())),
    };
    let value = find_field(item, "value").cloned();
    Ok(Operation { op, path, value })
}

fn find_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    super::find_key(object, name).and_then(|k| object.get(k))
}

/// Whether applying `ops` needs the group's stored members (a member
/// filter other than `value eq`).
pub fn needs_members(ops: &[Operation]) -> bool {
    ops.iter().any(|o| {
        o.path.as_ref().is_some_and(|p| {
            p.attr.name.eq_ignore_ascii_case("members") && p.filter.as_ref().is_some_and(members::needs_current)
        })
    })
}

/// What a path names, in schema terms.
enum Resolved {
    /// A whole extension object (`urn:...:enterprise:2.0:User`).
    Extension(&'static SchemaDef),
    Attr(Target),
    /// Group members (rows in the store).
    Members(Option<Filter>),
    /// Accepted and without effect: `schemas` (recomputed) and the
    /// write-only password (never stored).
    Ignore,
    /// Read-only (`id`, `meta`, `groups`): refused when named by a path,
    /// skipped in a path-less value.
    ReadOnly(String),
}

struct Target {
    /// The extension the attribute lives in; `None` for the core schema.
    ext: Option<&'static SchemaDef>,
    attr: &'static Attr,
    sub: Option<&'static Attr>,
    filter: Option<Filter>,
}

/// Applies `ops` to `doc` (a stored resource of `kind` whose id is `id`);
/// member operations go to `plan` (groups).
pub fn apply(
    kind: Kind,
    id: &str,
    doc: &mut Map<String, Value>,
    ops: &[Operation],
    mut plan: Option<&mut MemberPlan>,
) -> Result<(), ScimError> {
    for operation in ops {
        let value = operation.value.as_ref();
        match &operation.path {
            Some(path) => {
                let resolved = resolve(kind, path)?.ok_or_else(|| {
                    ScimError::InvalidPath(format!("no attribute `{path}` in the {} schemas", kind.name()))
                })?;
                if let Resolved::ReadOnly(name) = resolved {
                    return Err(ScimError::Mutability(format!("`{name}` is read-only")));
                }
                apply_one(kind, doc, operation.op, resolved, value, plan.as_deref_mut())?;
            }
            None if operation.op == Op::Remove => {
                return Err(ScimError::NoTarget("`remove` needs a `path`".into()));
            }
            None => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::InvalidValue(
                        "an operation without `path` needs an object `value`".into(),
                    ));
                };
                for (key, value) in values {
                    if key.eq_ignore_ascii_case("id") {
                        if value.as_str() != Some(id) {
                            return Err(ScimError::Mutability("`id` cannot be changed".into()));
                        }
                        continue;
                    }
                    let path = PatchPath::parse(key)?;
                    match resolve(kind, &path)? {
                        None => tracing::debug!(attribute = %key, "scim: dropping an attribute no schema defines"),
                        Some(Resolved::ReadOnly(_)) => {}
                        Some(resolved) => {
                            apply_one(kind, doc, operation.op, resolved, Some(value), plan.as_deref_mut())?
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// `None` when no schema of `kind` has the attribute.
fn resolve(kind: Kind, path: &PatchPath) -> Result<Option<Resolved>, ScimError> {
    let named = &path.attr;
    if let (Some(uri), None, None) = (&named.uri, &named.sub, &path.filter) {
        if let Some(ext) = kind.extension(&format!("{uri}:{}", named.name)) {
            return Ok(Some(Resolved::Extension(ext)));
        }
    }
    let (ext, attr) = match named.uri.as_deref() {
        Some(uri) if !uri.eq_ignore_ascii_case(kind.core().id) => {
            let Some(ext) = kind.extension(uri) else {
                return Ok(None);
            };
            match ext.attr(&named.name) {
                Some(attr) => (Some(ext), attr),
                None => return Ok(None),
            }
        }
        _ => match kind.core_attr(&named.name) {
            Some(attr) => (None, attr),
            // An extension attribute without its URN (older Entra samples).
            None => match kind
                .extensions()
                .iter()
                .find_map(|e| e.attr(&named.name).map(|a| (e, a)))
            {
                Some((ext, attr)) => (Some(*ext), attr),
                None => return Ok(None),
            },
        },
    };
    let sub = match named.sub.as_deref() {
        Some(sub) => match attr.sub_attr(sub) {
            Some(sub) => Some(sub),
            None => return Ok(None),
        },
        None => None,
    };
    if path.filter.is_some() && !attr.multi {
        return Err(ScimError::InvalidPath(format!(
            "`{}` is single-valued: no `[...]` filter",
            attr.name
        )));
    }
    if kind == Kind::Group && ext.is_none() && attr.name == "members" {
        if sub.is_some() {
            return Err(ScimError::Mutability(
                "a member's sub-attributes cannot be changed; add or remove the member".into(),
            ));
        }
        return Ok(Some(Resolved::Members(path.filter.clone())));
    }
    if attr.name == "schemas" || attr.mutability == Mutability::WriteOnly {
        return Ok(Some(Resolved::Ignore));
    }
    if attr.mutability == Mutability::ReadOnly || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly) {
        return Ok(Some(Resolved::ReadOnly(path.to_string())));
    }
    Ok(Some(Resolved::Attr(Target {
        ext,
        attr,
        sub,
        filter: path.filter.clone(),
    })))
}

fn apply_one(
    kind: Kind,
    doc: &mut Map<String, Value>,
    op: Op,
    resolved: Resolved,
    value: Option<&Value>,
    plan: Option<&mut MemberPlan>,
) -> Result<(), ScimError> {
    match resolved {
        Resolved::Ignore | Resolved::ReadOnly(_) => Ok(()),
        Resolved::Members(filter) => {
            let plan = plan.ok_or_else(|| ScimError::InvalidPath("no attribute `members` here".into()))?;
            member_op(plan, op, filter.as_ref(), value)
        }
        Resolved::Extension(ext) => match op {
            Op::Remove => {
                doc.remove(ext.id);
                Ok(())
            }
            Op::Add | Op::Replace => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::InvalidValue(format!("`{}` takes an object value", ext.id)));
                };
                for (key, value) in values {
                    let Some(attr) = ext.attr(key) else { continue };
                    let target = Target {
                        ext: Some(ext),
                        attr,
                        sub: None,
                        filter: None,
                    };
                    write(kind, doc, op, &target, Some(value))?;
                }
                Ok(())
            }
        },
        Resolved::Attr(target) => match op {
            Op::Remove => remove(kind, doc, &target, value),
            Op::Add | Op::Replace => write(kind, doc, op, &target, value),
        },
    }
}

fn member_op(plan: &mut MemberPlan, op: Op, filter: Option<&Filter>, value: Option<&Value>) -> Result<(), ScimError> {
    let ids = members::ids(value.unwrap_or(&Value::Null))?;
    match (op, filter) {
        (Op::Add, Some(_)) => return Err(ScimError::InvalidPath("add members without a filter".into())),
        (Op::Add, None) => plan.add(ids),
        (Op::Replace, None) => plan.set(ids),
        (Op::Replace, Some(filter)) => {
            plan.remove_matching(filter)?;
            plan.add(ids);
        }
        (Op::Remove, Some(filter)) => plan.remove_matching(filter)?,
        // Entra ID: a remove with a value removes those members only.
        (Op::Remove, None) if value.is_some_and(|v| !v.is_null()) => plan.remove(ids),
        (Op::Remove, None) => plan.set(Vec::new()),
    }
    Ok(())
}

/// The object the target's attribute lives in, made when `create`.
fn container<'d>(doc: &'d mut Map<String, Value>, target: &Target, create: bool) -> Option<&'d mut Map<String, Value>> {
    let Some(ext) = target.ext else {
        return Some(doc);
    };
    if create && !doc.get(ext.id).is_some_and(Value::is_object) {
        doc.insert(ext.id.to_string(), Value::Object(Map::new()));
    }
    doc.get_mut(ext.id).and_then(Value::as_object_mut)
}

/// `add` and `replace`.
fn write(
    kind: Kind,
    doc: &mut Map<String, Value>,
    op: Op,
    target: &Target,
    raw: Option<&Value>,
) -> Result<(), ScimError> {
    let raw = raw.unwrap_or(&Value::Null);
    let attr = target.attr;
    let schema = KindSchema(kind);
    let place = container(doc, target, true).ok_or_else(|| ScimError::InvalidValue("malformed extension".into()))?;
    let name = attr.name;
    match (&target.filter, target.sub) {
        (None, None) => {
            let Some(value) = value_of(attr, raw)? else {
                if op == Op::Replace {
                    place.remove(name);
                }
                return Ok(());
            };
            match (place.get_mut(name), value) {
                (Some(Value::Array(items)), Value::Array(new)) if op == Op::Add => {
                    let start = items.len();
                    for value in new {
                        if !items.contains(&value) {
                            items.push(value);
                        }
                    }
                    let added: Vec<usize> = (start..items.len()).collect();
                    settle_primary(items, &added);
                }
                (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                (_, value) => {
                    place.insert(name.to_string(), value);
                }
            }
        }
        (None, Some(sub)) => {
            let value = value_of(sub, raw)?;
            match place.get_mut(name) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    for item in items.iter_mut() {
                        set_sub(item, sub.name, value.clone());
                    }
                }
                Some(item) if item.is_object() => set_sub(item, sub.name, value),
                _ => {
                    if let Some(value) = value {
                        let element = Value::Object(Map::from_iter([(sub.name.to_string(), value)]));
                        let element = if attr.multi {
                            Value::Array(vec![element])
                        } else {
                            element
                        };
                        place.insert(name.to_string(), element);
                    }
                }
            }
        }
        (Some(filter), sub) => {
            let element_attr = Attr { multi: false, ..*attr };
            let value = match sub {
                Some(sub) => value_of(sub, raw)?,
                None => value_of(&element_attr, raw)?,
            };
            if !matches!(place.get(name), Some(Value::Array(_))) {
                place.insert(name.to_string(), Value::Array(Vec::new()));
            }
            let Some(Value::Array(items)) = place.get_mut(name) else {
                return Ok(());
            };
            let at = AttrPath {
                uri: target.ext.map(|e| e.id.to_string()),
                ..AttrPath::new(name)
            };
            let chosen = super::matching_indexes(items, &at, filter, &schema)?;
            if chosen.is_empty() {
                let Some(mut element) = element_from(attr, filter) else {
                    return Err(ScimError::NoTarget(format!("no value of `{name}` matches `{filter}`")));
                };
                match (sub, value) {
                    (Some(sub), Some(value)) => {
                        element.insert(sub.name.to_string(), value);
                    }
                    (None, Some(Value::Object(fields))) => element.extend(fields),
                    _ => return Ok(()),
                }
                items.push(Value::Object(element));
                let last = items.len() - 1;
                settle_primary(items, &[last]);
                return Ok(());
            }
            for &i in chosen.iter().rev() {
                match (sub, &value) {
                    (Some(sub), value) => set_sub(&mut items[i], sub.name, value.clone()),
                    (None, Some(value)) => items[i] = value.clone(),
                    (None, None) => {
                        items.remove(i);
                    }
                }
            }
            if value.is_some() {
                settle_primary(items, &chosen);
            }
        }
    }
    Ok(())
}

/// `remove`.
fn remove(kind: Kind, doc: &mut Map<String, Value>, target: &Target, raw: Option<&Value>) -> Result<(), ScimError> {
    let schema = KindSchema(kind);
    let Some(place) = container(doc, target, false) else {
        return Ok(());
    };
    let name = target.attr.name;
    match (&target.filter, target.sub) {
        (None, None) => match (raw, place.get_mut(name)) {
            (Some(raw), Some(Value::Array(items))) if !raw.is_null() => {
                let Some(Value::Array(gone)) = value_of(target.attr, raw)? else {
                    return Ok(());
                };
                items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
            }
            _ => {
                place.remove(name);
            }
        },
        (None, Some(sub)) => match place.get_mut(name) {
            Some(Value::Array(items)) => items.iter_mut().for_each(|item| set_sub(item, sub.name, None)),
            Some(item) => set_sub(item, sub.name, None),
            None => {}
        },
        (Some(filter), sub) => {
            let Some(Value::Array(items)) = place.get_mut(name) else {
                return Ok(());
            };
            let at = AttrPath {
                uri: target.ext.map(|e| e.id.to_string()),
                ..AttrPath::new(name)
            };
            let chosen = super::matching_indexes(items, &at, filter, &schema)?;
            for &i in chosen.iter().rev() {
                match sub {
                    Some(sub) => set_sub(&mut items[i], sub.name, None),
                    None => {
                        items.remove(i);
                    }
                }
            }
        }
    }
    Ok(())
}

fn set_sub(item: &mut Value, sub: &str, value: Option<Value>) {
    let Value::Object(fields) = item else { return };
    match value {
        Some(value) => {
            fields.insert(sub.to_string(), value);
        }
        None => {
            fields.remove(sub);
        }
    }
}

/// Elements are the same value when their `value`s are (or, without
/// one, when they are equal).
fn same_value(item: &Value, other: &Value) -> bool {
    match (item.get("value"), other.get("value")) {
        (Some(a), Some(b)) => a == b,
        _ => item == other,
    }
}

/// RFC 7644 §3.5.2: setting one value primary makes the others not.
fn settle_primary(items: &mut [Value], winners: &[usize]) {
    let primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    if !winners.iter().any(|&i| items.get(i).is_some_and(primary)) {
        return;
    }
    let keep = winners
        .iter()
        .rev()
        .copied()
        .find(|&i| items.get(i).is_some_and(primary));
    for (i, item) in items.iter_mut().enumerate() {
        if Some(i) != keep && primary(item) {
            set_sub(item, "primary", Some(Value::Bool(false)));
        }
    }
}

/// The element a filter of `eq`s describes (`type eq "work"` → `{"type":
/// "work"}`), to create when nothing matches; `None` for other filters.
fn element_from(attr: &Attr, filter: &Filter) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    let parts: Vec<&Filter> = match filter {
        Filter::And(items) => items.iter().collect(),
        single => vec![single],
    };
    for part in parts {
        let Filter::Compare(path, CompareOp::Eq, value) = part else {
            return None;
        };
        if path.uri.is_some() || path.sub.is_some() {
            return None;
        }
        let sub = find(attr.sub, &path.name)?;
        let value = match value {
            CompValue::String(s) => Value::String(s.clone()),
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Number(n) => Value::Number(n.clone()),
            CompValue::Null => return None,
        };
        element.insert(sub.name.to_string(), value);
    }
    Some(element)
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
