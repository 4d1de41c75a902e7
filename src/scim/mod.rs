//! SCIM 2.0 (RFC 7643 / RFC 7644) for doorward. So far the filters and
//! PATCH paths for the SCIM server: the parsers
//! for the two attacker-facing expression languages of RFC 7644, and their
//! evaluation against resources held as JSON.
//!
//! ```
//! use doorward::scim::{CoreSchema, Filter, PatchPath};
//! use serde_json::json;
//!
//! let filter = Filter::parse(r#"userName eq "bjensen" and emails[type eq "work"]"#).unwrap();
//! let user = json!({"userName": "BJensen", "emails": [{"type": "work", "value": "b@example.com"}]});
//! assert!(filter.matches(&user, &CoreSchema).unwrap());
//!
//! let path = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
//! assert_eq!(path.matching_indexes(&user, &CoreSchema).unwrap(), vec![0]);
//! ```
//!
//! Errors map to SCIM error responses (RFC 7644 §3.12): a [`FilterError`] is
//! a 400 with `scimType` `invalidFilter`; a [`PathError`] says which of
//! `invalidPath` / `invalidFilter` through [`PathError::scim_type`]. Both
//! carry a byte offset and a message fit for the `detail` member.
//!
//! Modules: `filter` (the AST, its printed form, [`FilterError`]), `parser`
//! (recursive descent for filters and paths) and `literal` (JSON strings and
//! numbers in it), `path` ([`PatchPath`]), `schema` (attribute
//! characteristics, [`CoreSchema`]), `check` (type rules, before
//! evaluation), `eval` (matching and PATCH element selection), `datetime`
//! (dateTime values as instants).

mod check;
mod datetime;
mod eval;
mod filter;
mod literal;
mod parser;
mod path;
mod schema;

pub use eval::{find_key, lookup, matching_indexes};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};
pub use path::{PatchPath, PathError};
pub use schema::{AttrInfo, AttrType, CoreSchema, Schema, ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

#[cfg(test)]
mod tests;
