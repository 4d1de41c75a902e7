//! One `add`, `replace` or `remove` applied to one resolved attribute of a
//! stored resource (see the `patch` module for what resolves paths and which
//! dialects are accepted). Values are normalised against the attribute
//! first, so merges compare names in their schema spelling; the result as
//! a whole is checked again afterwards.
//!
//! The rules, for a multi-valued attribute: `add` appends the values not
//! already there; `replace` sets the list; a value filter selects
//! elements (and, when nothing matches a filter of `eq`s, `add`/`replace`
//! make the element it describes); `remove` with a value list removes
//! those values. For a complex single-valued one (`name`, `manager`, an
//! extension), `add` and `replace` merge sub-attributes (RFC 7644
//! §3.5.2.3: sub-attributes not named are left unchanged). Setting a
//! value `primary` makes the others not.

use serde_json::{Map, Value};

use super::definitions::{find, Attr, Kind, KindSchema, SchemaDef};
use super::errors::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::resource::value_of;

/// A PATCH operation's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One attribute a path resolved to, in schema terms.
pub(super) struct Target {
    /// The extension the attribute lives in; `None` for the core schema.
    pub ext: Option<&'static SchemaDef>,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
    pub filter: Option<Filter>,
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
pub(super) fn write(
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
pub(super) fn remove(
    kind: Kind,
    doc: &mut Map<String, Value>,
    target: &Target,
    raw: Option<&Value>,
) -> Result<(), ScimError> {
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
