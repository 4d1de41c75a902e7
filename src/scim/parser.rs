//! The hand-written recursive-descent parser behind [`Filter::parse`] and
//! [`PatchPath::parse`](crate::scim::PatchPath::parse), for the ABNF of RFC 7644
//! Figure 1:
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ```
//!
//! Precedence (§3.4.2.2): grouping, then `not`, then `and`, then `or`, so
//! `a or b and c` is `a or (b and c)`. Where the ABNF is loose we follow the
//! errata and real clients:
//! - a value filter cannot nest another one (erratum 4690), and inside
//!   `[...]` a path is one sub-attribute name (complex attributes have no
//!   complex sub-attributes, RFC 7643 §2.3.8);
//! - `attr[filter].sub op value`, which Entra ID sends to match users on
//!   `emails[type eq "work"].value eq "..."`, is read as
//!   `attr[filter and sub op value]`;
//! - whitespace is any run of ASCII spaces, tabs or newlines (the RFC's own
//!   examples are wrapped), and keywords are case-insensitive;
//! - `$ref` is accepted as a name although ATTRNAME starts with ALPHA,
//!   because RFC 7643 names the sub-attribute so.
//!
//! Safety: every input byte is attacker-chosen. The length is bounded by the
//! callers, nesting by [`MAX_DEPTH`] (checked before recursing), every read
//! goes through `get`, so no input can panic or overflow the stack.

use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};
use crate::scim::literal;

// The filter type lives in `filter` (with the AST it is made of); its
// parser lives here, so the AST module depends on nothing that reads input.
impl Filter {
    /// Parses a filter such as `userName eq "bjensen" and emails[type eq "work"]`.
    ///
    /// Operators and the literals `true`/`false`/`null` are case-insensitive;
    /// attribute names keep their case. Errors carry a byte offset.
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        if input.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong {
                len: input.len(),
                max: MAX_FILTER_LEN,
            });
        }
        if input.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let mut parser = Parser::new(input);
        parser.skip_ws();
        let filter = parser.or_expr(false)?;
        parser.skip_ws();
        parser.expect_end()?;
        Ok(filter)
    }
}

/// Bytes that may appear in an attribute path: ATTRNAME characters, `$`,
/// and the `:` `.` `/` of a schema URI.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$' | b'/')
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus a leading `$` for `$ref`.
fn is_attr_name(name: &str) -> bool {
    let rest = name.strip_prefix('$').unwrap_or(name);
    let mut chars = rest.bytes();
    matches!(chars.next(), Some(b) if b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Quotes a piece of the input for an error message: at most 24 characters,
/// control characters escaped, so the message is safe to log and return.
pub(crate) fn quote(text: &str) -> String {
    let short: String = text.chars().take(24).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("`{}{ellipsis}`", short.escape_debug())
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Steps over one byte the caller has peeked at (an ASCII `.`).
    pub(crate) fn skip_one(&mut self) {
        self.pos += 1;
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace; says whether there was any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    pub(crate) fn expect_end(&self) -> Result<(), FilterError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(FilterError::TrailingInput {
                at: self.pos,
                found: self.found(self.pos),
            }),
        }
    }

    /// What the input holds at `at`, for an error message.
    fn found(&self, at: usize) -> String {
        match self.src.get(at..) {
            None | Some("") => "end of input".to_string(),
            Some(rest) => {
                let end = rest.bytes().position(is_ws).unwrap_or(rest.len()).max(1);
                quote(rest.get(..end).unwrap_or(rest))
            }
        }
    }

    fn expected(&self, expected: &'static str) -> FilterError {
        FilterError::Expected {
            at: self.pos,
            expected,
            found: self.found(self.pos),
        }
    }

    /// One level deeper; refused past [`MAX_DEPTH`] before any recursion.
    fn enter(&mut self) -> Result<(), FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(FilterError::TooDeep {
                at: self.pos,
                max: MAX_DEPTH,
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Consumes `word` (case-insensitively) if it is next and is a whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let matches = self
            .bytes
            .get(self.pos..end)
            .is_some_and(|b| b.eq_ignore_ascii_case(word.as_bytes()));
        if matches && !self.bytes.get(end).copied().is_some_and(is_path_byte) {
            self.pos = end;
            return true;
        }
        false
    }

    /// A run of ASCII letters and digits (an operator or a bare literal).
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// ` and ` / ` or ` between two operands: needs whitespace before, and
    /// whitespace, `(` or the end after (the end then fails in the operand,
    /// with a clearer message than "trailing input").
    fn logical(&mut self, word: &str) -> bool {
        let save = self.pos;
        if self.skip_ws() && self.eat_word(word) && (self.skip_ws() || matches!(self.peek(), None | Some(b'('))) {
            return true;
        }
        self.pos = save;
        false
    }

    /// `FILTER` (or `valFilter` when `in_brackets`): `or` of `and`s.
    pub(crate) fn or_expr(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut items = vec![self.and_expr(in_brackets)?];
        while self.logical("or") {
            items.push(self.and_expr(in_brackets)?);
        }
        Ok(Filter::or_of(items))
    }

    fn and_expr(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut items = vec![self.unary(in_brackets)?];
        while self.logical("and") {
            items.push(self.unary(in_brackets)?);
        }
        Ok(Filter::and_of(items))
    }

    /// `not (...)`, `(...)`, or an attribute expression.
    fn unary(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let start = self.pos;
        if self.eat_word("not") {
            self.skip_ws();
            if self.peek() == Some(b'(') {
                return Ok(Filter::Not(Box::new(self.group(in_brackets)?)));
            }
            // `not eq "x"` and `not[...]` name an attribute called `not`;
            // anything else after `not` is a missing parenthesis, and is said so.
            let mut probe = Parser { pos: self.pos, ..*self };
            let next = probe.word();
            let attribute = self.peek() == Some(b'[') || next.eq_ignore_ascii_case("pr");
            if !(attribute || CompareOp::from_keyword(next).is_some()) {
                return Err(self.expected("`(` after `not`"));
            }
            self.pos = start;
        }
        if self.peek() == Some(b'(') {
            return self.group(in_brackets);
        }
        self.attr_exp(in_brackets)
    }

    /// `"(" FILTER ")"`; the parentheses leave no node behind.
    fn group(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        let inner = self.or_expr(in_brackets)?;
        self.skip_ws();
        if self.peek() != Some(b')') {
            return Err(self.expected("`)`"));
        }
        self.pos += 1;
        self.leave();
        Ok(inner)
    }

    /// `"[" valFilter "]"`, the cursor on the `[`.
    pub(crate) fn bracket(&mut self) -> Result<Filter, FilterError> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        let inner = self.or_expr(true)?;
        self.skip_ws();
        if self.peek() != Some(b']') {
            return Err(self.expected("`]`"));
        }
        self.pos += 1;
        self.leave();
        Ok(inner)
    }

    /// `attrExp` or `valuePath`.
    fn attr_exp(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let path_at = self.pos;
        let path = self.attr_path(in_brackets)?;
        if self.peek() != Some(b'[') {
            return self.condition(path);
        }
        if in_brackets {
            return Err(FilterError::NestedValuePath { at: self.pos });
        }
        if path.sub.is_some() {
            return Err(FilterError::InvalidAttrPath {
                at: path_at,
                reason: "`[...]` follows the attribute name, not a sub-attribute",
            });
        }
        let inner = self.bracket()?;
        if self.peek() != Some(b'.') {
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        // Entra ID's `emails[type eq "work"].value eq "x"`. Its canonical form
        // `emails[(... or ...) and value eq "x"]` may need one more level of
        // parentheses than was written; refuse here rather than print a
        // filter that would not parse back.
        if matches!(inner, Filter::Or(_)) && self.depth + 2 > MAX_DEPTH {
            return Err(FilterError::TooDeep {
                at: self.pos,
                max: MAX_DEPTH,
            });
        }
        self.pos += 1;
        let sub = self.attr_name()?;
        let condition = self.condition(AttrPath::new(sub))?;
        Ok(Filter::ValuePath(
            path,
            Box::new(Filter::and_of(vec![inner, condition])),
        ))
    }

    /// `SP "pr"` or `SP compareOp SP compValue` after an attribute path.
    fn condition(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        if !self.skip_ws() {
            return Err(self.expected("a space, then an operator"));
        }
        let op_at = self.pos;
        let word = self.word();
        if word.is_empty() {
            self.pos = op_at;
            return Err(self.expected("an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)"));
        }
        if word.eq_ignore_ascii_case("pr") {
            let after = self.pos;
            self.skip_ws();
            if self.value_ahead() {
                return Err(FilterError::PresentWithValue { at: self.pos });
            }
            self.pos = after;
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::from_keyword(word).ok_or_else(|| FilterError::UnknownOperator {
            at: op_at,
            op: quote(word),
        })?;
        if !self.skip_ws() {
            return Err(self.expected("a space, then a comparison value"));
        }
        let value = self.comp_value()?;
        Ok(Filter::Compare(path, op, value))
    }

    /// Whether a comparison value starts here (to refuse `title pr "x"`).
    fn value_ahead(&self) -> bool {
        match self.peek() {
            Some(b'"' | b'-' | b'0'..=b'9') => true,
            _ => {
                let mut probe = Parser { ..*self };
                ["true", "false", "null"].iter().any(|w| probe.eat_word(w))
            }
        }
    }

    /// `compValue = false / null / true / number / string`, then a boundary.
    fn comp_value(&mut self) -> Result<CompValue, FilterError> {
        let at = self.pos;
        let value = match self.peek() {
            Some(b'"') => {
                let (text, end) = literal::string(self.src, self.pos)?;
                self.pos = end;
                CompValue::String(text)
            }
            Some(b'-' | b'0'..=b'9') => {
                let (number, end) = literal::number(self.src, self.pos)?;
                self.pos = end;
                CompValue::Number(number)
            }
            Some(b) if b.is_ascii_alphabetic() => match self.word().to_ascii_lowercase().as_str() {
                "true" => CompValue::Bool(true),
                "false" => CompValue::Bool(false),
                "null" => CompValue::Null,
                _ => {
                    return Err(FilterError::Expected {
                        at,
                        expected: "a comparison value: a \"quoted string\", a number, true, false or null",
                        found: self.found(at),
                    })
                }
            },
            _ => return Err(self.expected("a comparison value: a \"quoted string\", a number, true, false or null")),
        };
        match self.peek() {
            None | Some(b')' | b']') => Ok(value),
            Some(b) if is_ws(b) => Ok(value),
            Some(_) => Err(self.expected("a space, `)` or `]` after the value")),
        }
    }

    /// `[URI ":"] ATTRNAME ["." subAttr]`. Inside `[...]` only a bare
    /// sub-attribute name is allowed.
    pub(crate) fn attr_path(&mut self, in_brackets: bool) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        while self.peek().is_some_and(is_path_byte) {
            self.pos += 1;
        }
        let text = self.src.get(start..self.pos).unwrap_or_default();
        if text.is_empty() {
            return Err(self.expected("an attribute path, `(` or `not (`"));
        }
        let bad = |reason| FilterError::InvalidAttrPath { at: start, reason };
        // The URI is everything up to the last `:`; URNs hold dots
        // (`...:2.0:User`) so the sub-attribute is looked for only after it.
        let (uri, rest) = match text.rfind(':') {
            Some(i) => (text.get(..i), text.get(i + 1..).unwrap_or_default()),
            None => (None, text),
        };
        if let Some(uri) = uri {
            if in_brackets {
                return Err(bad(
                    "inside `[...]`, name a sub-attribute of the element, without a schema URI",
                ));
            }
            if !uri.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
                return Err(bad(
                    "a schema URI starts with a letter, as in `urn:ietf:params:scim:...`",
                ));
            }
        }
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default();
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(bad("at most one sub-attribute is allowed, as in `name.givenName`"));
        }
        if !is_attr_name(name) || !sub.is_none_or(is_attr_name) {
            return Err(bad(
                "an attribute name is a letter followed by letters, digits, `-` or `_`",
            ));
        }
        if in_brackets && sub.is_some() {
            return Err(bad(
                "inside `[...]`, name one sub-attribute of the element, as in `type`",
            ));
        }
        Ok(AttrPath {
            uri: uri.map(str::to_string),
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The `subAttr` name after a `.`.
    pub(crate) fn attr_name(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$'))
        {
            self.pos += 1;
        }
        match self.src.get(start..self.pos) {
            Some(name) if is_attr_name(name) => Ok(name.to_string()),
            _ => Err(FilterError::InvalidAttrPath {
                at: start,
                reason: "expected a sub-attribute name after `.`, as in `.value`",
            }),
        }
    }
}
