//! doorward's SCIM 2.0 server (RFC 7643 / RFC 7644): identity providers
//! push users and groups here, and live sessions follow.
//!
//! Two halves. The expression languages, pure and attacker-facing:
//! `filter` (the AST, its printed form, [`FilterError`]), `parser`
//! (recursive descent for filters and PATCH paths) and `literal` (JSON
//! strings and numbers in them), `path` ([`PatchPath`]), `schema`
//! (attribute characteristics), `check` (type rules, before evaluation),
//! `eval` (matching and PATCH element selection), `datetime` (dateTime
//! values as instants).
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
//! And the server, by job: `service` (authenticate, route, read the body,
//! answer), `auth` (credentials, failure rate limit), `definitions` (the
//! schemas as one table), `resource` (checking and normalising writes),
//! `patch`, `edit` and `members` (PATCH operations), `collection` (the
//! resource endpoints, once) with `users` and `groups` (what differs
//! between them), `list` (filters, paging), `render` (rows as resources,
//! `attributes`/`excludedAttributes`), `discovery`, `errors` (SCIM error
//! bodies) and `reply`.
//!
//! The server writes the directory through a
//! [`DirectoryHandle`](crate::directory::DirectoryHandle) and knows
//! neither `auth` nor sessions: what a write changed goes to the handle's
//! notifier.

mod audit;
mod auth;
mod check;
mod collection;
mod core_schema;
mod datetime;
pub mod definitions;
mod discovery;
mod edit;
mod errors;
mod eval;
mod filter;
mod groups;
mod list;
mod literal;
mod members;
mod parser;
mod patch;
mod path;
mod render;
mod reply;
mod resource;
mod schema;
mod service;
mod users;

pub use core_schema::CoreSchema;
pub use errors::ScimError;
pub use eval::{find_key, lookup, matching_indexes};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};
pub use path::{PatchPath, PathError};
pub use schema::{AttrInfo, AttrType, Schema, ENTERPRISE_USER_URN, GROUP_URN, USER_URN};
pub use service::{Peer, Scim, ScimSetupError};

#[cfg(test)]
mod tests;
