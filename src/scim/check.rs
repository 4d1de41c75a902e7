//! Checking a parsed filter against the schema before evaluating it.
//!
//! RFC 7644 §3.4.2.2 makes some comparisons errors rather than non-matches
//! (`gt` on a boolean, `co` on a number, ...). Those depend only on the filter
//! and the schema, never on the data, so they are found here once, before any
//! resource is looked at: a list request gets the same `invalidFilter` answer
//! whether the store holds no users or a million, and evaluation itself is
//! infallible.
//!
//! Type rules, where the schema knows the attribute:
//! - boolean: compared with `true`/`false` (or `null`) by `eq`/`ne` only. A
//!   quoted `"true"` is a string and is refused, not coerced: `active eq
//!   "true"` is a client bug and is said so (Entra ID's legacy string
//!   booleans are a PATCH-body quirk, to be normalised on write, not a filter
//!   one);
//! - integer/decimal: compared with numbers; `co`/`sw`/`ew` refused;
//! - dateTime: compared with a string that is a valid dateTime;
//! - string/reference/binary: compared with strings; binary is not ordered;
//! - complex without a sub-attribute: compared through its `value`
//!   sub-attribute (RFC 7644 §3.4.2.2, for `emails co "example.com"`), and
//!   refused when it has none (`name eq "x"`);
//! - never-returned attributes (`password`) cannot be filtered on at all.
//!
//! Attributes the schema does not know pass; evaluation then goes by the
//! JSON types it finds, and a type mismatch simply does not match.

use crate::scim::datetime;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, FilterError};
use crate::scim::parser::quote;
use crate::scim::schema::{AttrInfo, AttrType, Schema};

/// The characteristics of `path`, read inside `parent`'s elements when the
/// path sits in a value filter (`emails[type eq "work"]`: `type` of `emails`).
pub(crate) fn attr_info(schema: &dyn Schema, parent: Option<&AttrPath>, path: &AttrPath) -> Option<AttrInfo> {
    match parent {
        None => schema.attribute(extension(schema, &path.uri), &path.name, path.sub.as_deref()),
        Some(parent) => match schema.attribute(extension(schema, &parent.uri), &parent.name, Some(&path.name)) {
            Some(info) => Some(info),
            // `value` of a multi-valued simple attribute is the element itself.
            None if path.name.eq_ignore_ascii_case("value") => schema
                .attribute(extension(schema, &parent.uri), &parent.name, None)
                .filter(|p| p.ty != AttrType::Complex)
                .map(|p| AttrInfo {
                    multi_valued: false,
                    ..p
                }),
            None => None,
        },
    }
}

/// The URI of an extension schema; `None` for no URI or a core schema's.
fn extension<'u>(schema: &dyn Schema, uri: &'u Option<String>) -> Option<&'u str> {
    uri.as_deref().filter(|u| !schema.is_core(u))
}

/// The characteristics a comparison uses: a complex attribute compares
/// through its `value` sub-attribute. `Err(())` when it is complex and has none.
pub(crate) fn comparison_info(
    schema: &dyn Schema,
    parent: Option<&AttrPath>,
    path: &AttrPath,
) -> Result<Option<AttrInfo>, ()> {
    match attr_info(schema, parent, path) {
        Some(info) if info.ty == AttrType::Complex => {
            let value = AttrPath {
                sub: Some("value".to_string()),
                ..path.clone()
            };
            match (parent, attr_info(schema, None, &value)) {
                (None, Some(sub)) => Ok(Some(sub)),
                _ => Err(()),
            }
        }
        other => Ok(other),
    }
}

impl Filter {
    /// Checks the filter's comparisons against `schema` (see the module docs).
    /// [`Filter::matches`] calls this itself; call it directly to refuse a bad
    /// filter once before evaluating it against many resources.
    pub fn validate(&self, schema: &dyn Schema) -> Result<(), FilterError> {
        self.validate_in(None, schema)
    }

    /// As [`Filter::validate`], for a value filter whose paths are
    /// sub-attributes of the elements of `parent`.
    pub(crate) fn validate_in(&self, parent: Option<&AttrPath>, schema: &dyn Schema) -> Result<(), FilterError> {
        match self {
            Filter::Present(path) => filterable(schema, parent, path),
            Filter::Compare(path, op, value) => check_compare(schema, parent, path, *op, value),
            Filter::ValuePath(path, inner) => {
                filterable(schema, parent, path)?;
                if let Some(info) = attr_info(schema, parent, path) {
                    if !info.multi_valued && info.ty != AttrType::Complex {
                        return Err(invalid(
                            parent,
                            path,
                            "`[...]` applies to multi-valued or complex attributes",
                        ));
                    }
                }
                inner.validate_in(Some(path), schema)
            }
            Filter::Not(inner) => inner.validate_in(parent, schema),
            Filter::And(items) | Filter::Or(items) => items.iter().try_for_each(|f| f.validate_in(parent, schema)),
        }
    }
}

fn invalid(parent: Option<&AttrPath>, path: &AttrPath, reason: impl Into<String>) -> FilterError {
    let attr = match parent {
        Some(parent) => format!("{parent}.{}", path.name),
        None => path.to_string(),
    };
    FilterError::InvalidComparison {
        attr,
        reason: reason.into(),
    }
}

fn filterable(schema: &dyn Schema, parent: Option<&AttrPath>, path: &AttrPath) -> Result<(), FilterError> {
    match attr_info(schema, parent, path) {
        Some(info) if !info.filterable => Err(invalid(parent, path, "this attribute cannot be filtered on")),
        _ => Ok(()),
    }
}

fn check_compare(
    schema: &dyn Schema,
    parent: Option<&AttrPath>,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<(), FilterError> {
    let fail = |reason: String| Err(invalid(parent, path, reason));
    match value {
        CompValue::Null if !matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            return fail(format!("`{op}` does not apply to null; use eq null or ne null"))
        }
        CompValue::Bool(_) if !matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            return fail(format!("`{op}` does not apply to booleans; use eq or ne"))
        }
        CompValue::Number(_) if op.is_substring() => {
            return fail(format!(
                "`{op}` compares text; a number cannot be searched for substrings"
            ))
        }
        _ => {}
    }
    filterable(schema, parent, path)?;
    let info = match comparison_info(schema, parent, path) {
        Ok(Some(info)) => info,
        Ok(None) => return Ok(()),
        Err(()) => return fail("it is complex and has no `value`; compare one of its sub-attributes".into()),
    };
    match (info.ty, value) {
        (_, CompValue::Null) => Ok(()),
        (AttrType::Boolean, CompValue::Bool(_)) => Ok(()),
        (AttrType::Boolean, _) => fail("it is a boolean; compare it with true or false, without quotes".into()),
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(_)) => Ok(()),
        (AttrType::Integer | AttrType::Decimal, _) => fail("it is a number; compare it with an unquoted number".into()),
        (AttrType::DateTime, CompValue::String(s)) if !op.is_substring() && datetime::parse(s).is_none() => fail(
            format!("{} is not a dateTime such as \"2011-05-13T04:42:34Z\"", quote(s)),
        ),
        (AttrType::Binary, CompValue::String(_)) if op.is_ordering() => {
            fail(format!("`{op}` does not apply to binary values"))
        }
        (_, CompValue::String(_)) => Ok(()),
        (_, _) => fail("it is a string; compare it with a \"quoted string\"".into()),
    }
}
