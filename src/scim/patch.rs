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
//! This module reads the request and resolves each path; `edit` applies
//! one operation to one attribute. Group `members` are not edited there
//! but collected in a [`MemberPlan`](super::members::MemberPlan).

use serde_json::{Map, Value};

use super::definitions::{Kind, Mutability, SchemaDef};
use super::edit::{self, Op, Target};
use super::errors::ScimError;
use super::filter::Filter;
use super::members::{self, MemberPlan};
use super::path::PatchPath;

/// `urn:ietf:params:scim:api:messages:2.0:PatchOp`
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

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
                    edit::write(kind, doc, op, &target, Some(value))?;
                }
                Ok(())
            }
        },
        Resolved::Attr(target) => match op {
            Op::Remove => edit::remove(kind, doc, &target, value),
            Op::Add | Op::Replace => edit::write(kind, doc, op, &target, value),
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

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
