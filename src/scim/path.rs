//! PATCH paths (RFC 7644 §3.5.2, Figure 7): which attribute, and which
//! elements of a multi-valued attribute, an `add`/`remove`/`replace`
//! operation targets.
//!
//! ```text
//! PATH = attrPath / valuePath [subAttr]
//! ```
//!
//! What IdPs send: `active`, `name.familyName`, `members`,
//! `members[value eq "2819c223"]` (Okta's and Entra ID's member removal),
//! `emails[type eq "work"].value`, `addresses[type eq "work"].streetAddress`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`. The
//! same grammar also reads the keys of Entra ID's path-less `replace` value
//! object (`"name.givenName": "..."`).
//!
//! The path is attacker-chosen like a filter, so it has the same bounds and
//! the same panic-free parser. Not accepted: a bare `attrExp` as a path
//! (proposed by erratum 7122, sent by no IdP we know of).

use std::fmt;

use crate::scim::filter::{AttrPath, Filter, FilterError, MAX_FILTER_LEN};
use crate::scim::parser::Parser;

/// A parsed PATCH path.
///
/// `attr` names the attribute; with a `filter` it is a value path and
/// `attr.sub` is the sub-attribute written after the brackets, so
/// `emails[type eq "work"].value` is `attr = emails.value`,
/// `filter = type eq "work"`. Without a filter, `attr.sub` is an ordinary
/// sub-attribute (`name.givenName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// The value filter; its paths are sub-attributes of one element.
    pub filter: Option<Filter>,
}

impl PatchPath {
    /// Parses a PATCH `path`. Attribute names keep their case (matching folds it).
    pub fn parse(input: &str) -> Result<PatchPath, PathError> {
        if input.len() > MAX_FILTER_LEN {
            return Err(PathError::TooLong {
                len: input.len(),
                max: MAX_FILTER_LEN,
            });
        }
        if input.trim().is_empty() {
            return Err(PathError::Empty);
        }
        let mut parser = Parser::new(input);
        parser.skip_ws();
        let mut attr = parser.attr_path(false).map_err(PathError::Invalid)?;
        let mut filter = None;
        if parser.peek() == Some(b'[') {
            if attr.sub.is_some() {
                return Err(PathError::Invalid(FilterError::InvalidAttrPath {
                    at: parser.pos(),
                    reason: "`[...]` follows the attribute name, not a sub-attribute",
                }));
            }
            // Errors inside the brackets are filter errors: RFC 7644 Table 9
            // lists `invalidFilter` for a PATCH path filter.
            filter = Some(parser.bracket().map_err(PathError::Filter)?);
            if parser.peek() == Some(b'.') {
                parser.skip_one();
                attr.sub = Some(parser.attr_name().map_err(PathError::Invalid)?);
            }
        }
        parser.skip_ws();
        parser.expect_end().map_err(PathError::Invalid)?;
        Ok(PatchPath { attr, filter })
    }

    /// The attribute path without the sub-attribute written after `]`:
    /// the multi-valued attribute whose elements `filter` selects.
    pub fn target(&self) -> AttrPath {
        match self.filter {
            Some(_) => AttrPath {
                sub: None,
                ..self.attr.clone()
            },
            None => self.attr.clone(),
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filter {
            None => write!(f, "{}", self.attr),
            Some(filter) => {
                write!(f, "{}[{filter}]", self.target())?;
                match &self.attr.sub {
                    Some(sub) => write!(f, ".{sub}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why a PATCH path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path is {len} bytes long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    /// The attribute part is malformed: `invalidPath`.
    #[error("invalid path: {0}")]
    Invalid(FilterError),
    /// The value filter inside `[...]` is malformed: `invalidFilter`.
    #[error("invalid filter in path: {0}")]
    Filter(FilterError),
}

impl PathError {
    /// The SCIM `scimType` for this error (RFC 7644 §3.12, Table 9).
    pub fn scim_type(&self) -> &'static str {
        match self {
            PathError::Filter(_) => "invalidFilter",
            _ => "invalidPath",
        }
    }

    /// The byte offset the error points at, when it points at one.
    pub fn position(&self) -> Option<usize> {
        match self {
            PathError::Invalid(e) | PathError::Filter(e) => e.position(),
            _ => None,
        }
    }
}
