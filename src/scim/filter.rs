//! SCIM filter expressions (RFC 7644 §3.4.2.2): the AST, its canonical text
//! form, and the error an IdP gets back as an `invalidFilter` detail.
//!
//! A filter arrives in a query string (`GET /Users?filter=...`) or a
//! `/.search` body, so every byte of it is attacker-chosen. Parsing ([`Filter::parse`]) is
//! done by the hand-written recursive-descent parser in `parser.rs`, which refuses
//! inputs over [`MAX_FILTER_LEN`] bytes and nesting over [`MAX_DEPTH`] levels
//! before it could exhaust the stack, and never panics.
//!
//! The AST keeps `and`/`or` n-ary and flattened (an `And` never holds an
//! `And`), so a long chain `a and b and c ...` is a flat list rather than a
//! deep tree: nothing that walks it (evaluation, `Display`, `Drop`) recurses
//! deeper than the parser allowed. `Display` prints the canonical form, which
//! parses back to an equal AST.

use std::fmt;

use serde_json::{Number, Value};

/// Longest filter accepted, in bytes. Entra ID and Okta send filters of well
/// under 200 bytes (`userName eq "..."`); 4 KiB leaves room for hand-written
/// ones while bounding the work a single request can cause.
pub const MAX_FILTER_LEN: usize = 4096;

/// Deepest nesting of parentheses, `not (...)` and `attr[...]` accepted.
/// Each level is a few stack frames in the parser; 32 is far past any real
/// filter and far below any stack limit.
pub const MAX_DEPTH: usize = 32;

/// `[URI ":"] ATTRNAME ["." subAttr]`: which attribute a filter or PATCH path
/// names. Names keep the case they were written in (attribute names are
/// case-insensitive, RFC 7643 §2.1; matching folds case, printing does not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub uri: Option<String>,
    /// The attribute name, e.g. `emails`, `userName`, `employeeNumber`.
    pub name: String,
    /// The sub-attribute, e.g. `givenName` in `name.givenName`.
    pub sub: Option<String>,
}

impl AttrPath {
    /// A plain attribute name with no schema prefix and no sub-attribute.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            uri: None,
            name: name.into(),
            sub: None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// The comparison operators of RFC 7644 Table 3 (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// The operator for a keyword, case-insensitively (`EQ`, `Eq` and `eq` are one operator).
    pub fn from_keyword(word: &str) -> Option<Self> {
        const OPS: [(&str, CompareOp); 9] = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        OPS.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(word))
            .map(|(_, op)| *op)
    }

    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// `gt`, `ge`, `lt`, `le`: the operators that need an ordering.
    pub fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    /// `co`, `sw`, `ew`: the operators that only make sense on text.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// `compValue = false / null / true / number / string` (JSON literals).
///
/// A quoted `"true"` is a [`CompValue::String`], never a boolean: the grammar
/// says so, and treating it otherwise would let `active eq "true"` quietly
/// mean something the client did not write (see `check.rs` for the error).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            // serde_json's writer escapes quotes, backslashes and control
            // characters, so the printed form parses back to the same string.
            CompValue::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath "[" valFilter "]"`: some element of the multi-valued
    /// attribute satisfies the inner filter, whose paths name sub-attributes
    /// of that element. Entra ID's `emails[type eq "work"].value eq "x"` is
    /// parsed into this form as `emails[type eq "work" and value eq "x"]`.
    ValuePath(AttrPath, Box<Filter>),
    /// `not (FILTER)`
    Not(Box<Filter>),
    /// Two or more filters that must all match; never directly holds an `And`.
    And(Vec<Filter>),
    /// Two or more filters of which one must match; never directly holds an `Or`.
    Or(Vec<Filter>),
}

impl Filter {
    /// `a and b`, flattening nested `And`s so the tree stays shallow.
    pub(crate) fn and_of(items: Vec<Filter>) -> Filter {
        Self::join(items, true)
    }

    /// `a or b`, flattening nested `Or`s.
    pub(crate) fn or_of(items: Vec<Filter>) -> Filter {
        Self::join(items, false)
    }

    fn join(items: Vec<Filter>, and: bool) -> Filter {
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match (item, and) {
                (Filter::And(inner), true) | (Filter::Or(inner), false) => flat.extend(inner),
                (other, _) => flat.push(other),
            }
        }
        match flat.len() {
            1 => flat.pop().unwrap_or(Filter::And(Vec::new())),
            _ if and => Filter::And(flat),
            _ => Filter::Or(flat),
        }
    }
}

impl fmt::Display for Filter {
    /// The canonical text: lower-case keywords, single spaces, and parentheses
    /// only where `or` sits inside `and` (the one place precedence needs them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Filter::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    match item {
                        Filter::Or(_) => write!(f, "({item})")?,
                        _ => write!(f, "{item}")?,
                    }
                }
                Ok(())
            }
            Filter::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a filter was refused: the `detail` of a SCIM error with
/// `"scimType": "invalidFilter"` and status 400 (RFC 7644 §3.12).
///
/// Offsets (`at`) are 0-based byte offsets into the filter text. Any input
/// quoted back (`found`, `op`) is shortened and escaped, so the message is
/// safe to log and to return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is empty")]
    Empty,
    #[error("the filter is {len} bytes long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    #[error("the filter nests deeper than {max} levels at offset {at}")]
    TooDeep { at: usize, max: usize },
    #[error("expected {expected} at offset {at}, found {found}")]
    Expected {
        at: usize,
        expected: &'static str,
        found: String,
    },
    #[error("the operator {op} at offset {at} is not supported; use eq, ne, co, sw, ew, gt, ge, lt, le or pr")]
    UnknownOperator { at: usize, op: String },
    #[error("the string starting at offset {at} is not terminated")]
    UnterminatedString { at: usize },
    #[error("invalid string at offset {at}: {reason}")]
    InvalidString { at: usize, reason: &'static str },
    #[error("invalid number at offset {at}")]
    InvalidNumber { at: usize },
    #[error("invalid attribute path at offset {at}: {reason}")]
    InvalidAttrPath { at: usize, reason: &'static str },
    #[error("`pr` takes no comparison value (offset {at})")]
    PresentWithValue { at: usize },
    #[error("a value filter cannot contain another one (offset {at})")]
    NestedValuePath { at: usize },
    #[error("unexpected {found} at offset {at}, after the end of the expression")]
    TrailingInput { at: usize, found: String },
    /// The filter is well-formed but asks for a comparison the attribute's
    /// type does not allow (RFC 7644 §3.4.2.2: e.g. `gt` on a boolean).
    #[error("cannot evaluate `{attr}`: {reason}")]
    InvalidComparison { attr: String, reason: String },
}

impl FilterError {
    /// The SCIM `scimType` for this error.
    pub fn scim_type(&self) -> &'static str {
        "invalidFilter"
    }

    /// The byte offset the error points at, when it points at one.
    pub fn position(&self) -> Option<usize> {
        match self {
            FilterError::Empty | FilterError::TooLong { .. } | FilterError::InvalidComparison { .. } => None,
            FilterError::TooDeep { at, .. }
            | FilterError::Expected { at, .. }
            | FilterError::UnknownOperator { at, .. }
            | FilterError::UnterminatedString { at }
            | FilterError::InvalidString { at, .. }
            | FilterError::InvalidNumber { at }
            | FilterError::InvalidAttrPath { at, .. }
            | FilterError::PresentWithValue { at }
            | FilterError::NestedValuePath { at }
            | FilterError::TrailingInput { at, .. } => Some(*at),
        }
    }
}
