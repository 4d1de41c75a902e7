//! Evaluating a filter against a resource held as JSON, and selecting the
//! elements a PATCH value path targets (RFC 7644 §3.4.2.2, §3.5.2).
//!
//! Rules, in the order a comparison meets them:
//! - attribute names match JSON keys case-insensitively (ASCII folding only,
//!   so no Unicode look-alike can alias a key); an exact-case key wins over a
//!   folded one;
//! - a schema URN prefix selects the extension object stored under that URN
//!   (`urn:...:enterprise:2.0:User:manager`); a core URN is the top level;
//! - `null` is the same as absent (RFC 7643 §2.5), and an array is one value
//!   per element: a multi-valued attribute matches if any value does;
//! - a complex value compared without a sub-attribute compares its `value`
//!   (`emails co "@example.com"`, `manager eq "id"`);
//! - strings compare case-insensitively unless the attribute is case-exact;
//!   `gt`/`ge`/`lt`/`le` order strings by code point, numbers by value, and
//!   dateTime attributes by instant;
//! - `pr` is true when some value is non-empty: not null, not `""`, not `[]`,
//!   not an object whose members are all empty;
//! - `eq null` means "not present", `ne null` means "present";
//! - `ne` is true when the attribute is absent, or when some value differs
//!   (the any-value rule, applied literally);
//! - values of different JSON types are never equal: the string `"True"`
//!   does not equal the boolean `true`.
//!
//! Evaluation cannot fail: everything that can be refused was refused by
//! [`Filter::validate`], which [`Filter::matches`] runs first.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::scim::check::{attr_info, comparison_info};
use crate::scim::datetime;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, FilterError};
use crate::scim::path::PatchPath;
use crate::scim::schema::{AttrInfo, AttrType, Schema};

impl Filter {
    /// Whether `resource` (a SCIM resource as JSON) matches the filter.
    ///
    /// Errors are `invalidFilter`s found by [`Filter::validate`]; they depend
    /// on the filter and the schema only, never on the resource.
    pub fn matches(&self, resource: &Value, schema: &dyn Schema) -> Result<bool, FilterError> {
        self.validate(schema)?;
        Ok(Eval { schema }.filter(self, resource, None))
    }
}

impl PatchPath {
    /// The indexes, in the array at [`PatchPath::target`] in `resource`, of
    /// the elements this path selects: those matching its value filter, or
    /// all of them when it has none. Empty when the attribute is absent or
    /// is not an array; the PATCH code decides whether that is `noTarget`.
    pub fn matching_indexes(&self, resource: &Value, schema: &dyn Schema) -> Result<Vec<usize>, FilterError> {
        let target = self.target();
        let Some(Value::Array(elements)) = lookup(resource, &target, schema) else {
            return Ok(Vec::new());
        };
        match &self.filter {
            Some(filter) => matching_indexes(elements, &target, filter, schema),
            None => Ok((0..elements.len()).collect()),
        }
    }
}

/// The indexes of the `elements` of the multi-valued attribute `attr` that
/// match the value filter `filter` (whose paths name sub-attributes).
/// A simple (non-object) element is matched as if it were `{"value": element}`.
pub fn matching_indexes(
    elements: &[Value],
    attr: &AttrPath,
    filter: &Filter,
    schema: &dyn Schema,
) -> Result<Vec<usize>, FilterError> {
    filter.validate_in(Some(attr), schema)?;
    let eval = Eval { schema };
    let selected = elements
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_null() && eval.filter(filter, e, Some(attr)));
    Ok(selected.map(|(i, _)| i).collect())
}

/// The value at a single-valued path: `userName`, `name.givenName`,
/// `urn:...:enterprise:2.0:User:manager`, or a whole extension object when
/// the path is its URN. `None` when absent, or when `path.sub` is asked of a
/// multi-valued attribute (use [`PatchPath::matching_indexes`] there).
pub fn lookup<'a>(resource: &'a Value, path: &AttrPath, schema: &dyn Schema) -> Option<&'a Value> {
    let container = match path.uri.as_deref() {
        None => Some(resource),
        Some(uri) if schema.is_core(uri) => Some(resource),
        Some(uri) => get(resource, uri),
    };
    let value = match container.and_then(|c| get(c, &path.name)) {
        Some(value) => value,
        // `urn:...:enterprise:2.0:User` itself names the extension object; it
        // parses as URI `urn:...:2.0` and attribute `User`.
        None if path.sub.is_none() => get(resource, &path.to_string())?,
        None => return None,
    };
    match path.sub.as_deref() {
        None => Some(value),
        Some(sub) => get(value, sub),
    }
}

/// The key of `map` that `name` refers to: an exact match, else the first
/// ASCII-case-insensitive one. For PATCH code that must edit the key it found.
pub fn find_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    map.get_key_value(name)
        .map(|(k, _)| k)
        .or_else(|| map.keys().find(|k| k.eq_ignore_ascii_case(name)))
}

/// `value[name]`, with the key matched as [`find_key`] does.
fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    find_key(map, name).and_then(|k| map.get(k))
}

/// A sub-attribute of one element; a simple element is its own `value`.
fn get_sub<'a>(element: &'a Value, name: &str) -> Option<&'a Value> {
    match element {
        Value::Object(_) => get(element, name),
        _ if name.eq_ignore_ascii_case("value") => Some(element),
        _ => None,
    }
}

/// Pushes the non-null values of `value`: each element of an array, or itself.
fn push_values<'a>(value: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => out.extend(items.iter().filter(|v| !v.is_null())),
        Some(other) => out.push(other),
    }
}

/// RFC 7644 `pr`: a non-empty value, or a complex value with a non-empty member.
fn present(value: &Value) -> bool {
    present_within(value, 4)
}

/// SCIM values nest two levels at most (RFC 7643 §2.3.8), but stored JSON is
/// client-supplied: below `depth` levels a non-empty container counts as
/// present, so no resource can make this recurse deeply.
fn present_within(value: &Value, depth: usize) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) if depth == 0 => !items.is_empty(),
        Value::Object(members) if depth == 0 => !members.is_empty(),
        Value::Array(items) => items.iter().any(|v| present_within(v, depth - 1)),
        Value::Object(members) => members.values().any(|v| present_within(v, depth - 1)),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

struct Eval<'s> {
    schema: &'s dyn Schema,
}

impl Eval<'_> {
    /// `ctx` is the resource, or one element when `parent` is the value path.
    fn filter(&self, filter: &Filter, ctx: &Value, parent: Option<&AttrPath>) -> bool {
        match filter {
            Filter::Present(path) => self.values(ctx, parent, path).into_iter().any(present),
            Filter::Compare(path, op, value) => self.compare(ctx, parent, path, *op, value),
            Filter::ValuePath(path, inner) => self
                .values(ctx, parent, path)
                .into_iter()
                .any(|element| self.filter(inner, element, Some(path))),
            Filter::Not(inner) => !self.filter(inner, ctx, parent),
            Filter::And(items) => items.iter().all(|f| self.filter(f, ctx, parent)),
            Filter::Or(items) => items.iter().any(|f| self.filter(f, ctx, parent)),
        }
    }

    /// Every non-null value at `path`, arrays flattened one level.
    fn values<'a>(&self, ctx: &'a Value, parent: Option<&AttrPath>, path: &AttrPath) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if parent.is_some() {
            push_values(get_sub(ctx, &path.name), &mut out);
            return out;
        }
        let top = AttrPath {
            sub: None,
            ..path.clone()
        };
        let mut outer = Vec::new();
        push_values(lookup(ctx, &top, self.schema), &mut outer);
        match path.sub.as_deref() {
            None => out = outer,
            Some(sub) => outer.into_iter().for_each(|v| push_values(get_sub(v, sub), &mut out)),
        }
        out
    }

    fn compare(
        &self,
        ctx: &Value,
        parent: Option<&AttrPath>,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> bool {
        // `eq null` is "not present" and `ne null` "present", for complex
        // values too; validation allowed no other operator with null.
        if *value == CompValue::Null {
            let present = self.values(ctx, parent, path).into_iter().any(present);
            return if op == CompareOp::Eq { !present } else { present };
        }
        let complex = attr_info(self.schema, parent, path).is_some_and(|i| i.ty == AttrType::Complex);
        let info = comparison_info(self.schema, parent, path).ok().flatten();
        // A complex value compares through its `value` (known from the
        // schema, or seen in the data for attributes the schema lacks).
        let mut leaves = Vec::new();
        for v in self.values(ctx, parent, path) {
            match v {
                Value::Object(_) => push_values(get(v, "value"), &mut leaves),
                _ if complex => {}
                other => leaves.push(other),
            }
        }
        if op == CompareOp::Ne && leaves.is_empty() {
            return true;
        }
        leaves.into_iter().any(|leaf| compare_one(leaf, op, value, info))
    }
}

fn compare_one(leaf: &Value, op: CompareOp, value: &CompValue, info: Option<AttrInfo>) -> bool {
    match (leaf, value) {
        (Value::String(s), CompValue::String(c)) => {
            let dated = info.is_some_and(|i| i.ty == AttrType::DateTime) && !op.is_substring();
            if dated {
                return match (datetime::parse(s), datetime::parse(c)) {
                    (Some(a), Some(b)) => ordered(op, a.cmp(&b)),
                    _ => op == CompareOp::Ne,
                };
            }
            let (s, c): (Cow<str>, Cow<str>) = match info.is_some_and(|i| i.case_exact) {
                true => (s.into(), c.into()),
                false => (s.to_lowercase().into(), c.to_lowercase().into()),
            };
            match op {
                CompareOp::Co => s.contains(c.as_ref()),
                CompareOp::Sw => s.starts_with(c.as_ref()),
                CompareOp::Ew => s.ends_with(c.as_ref()),
                _ => ordered(op, s.cmp(&c)),
            }
        }
        (Value::Number(n), CompValue::Number(c)) => {
            !op.is_substring() && number_cmp(n, c).is_some_and(|ord| ordered(op, ord))
        }
        (Value::Bool(b), CompValue::Bool(c)) => match op {
            CompareOp::Eq => b == c,
            CompareOp::Ne => b != c,
            _ => false,
        },
        // Different JSON types are never identical.
        _ => op == CompareOp::Ne,
    }
}

/// Whether `ord` (value relative to the filter's operand) satisfies `op`.
fn ordered(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Integers compare exactly; anything with a fraction or exponent as f64.
fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
