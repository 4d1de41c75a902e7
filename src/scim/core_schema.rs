//! [`CoreSchema`]: every schema doorward serves, as one [`Schema`], for
//! filters and paths evaluated without a resource type. Its own module
//! because it reads the table in `definitions`, which is itself written in
//! `schema`'s terms.

use super::definitions;
use super::schema::{AttrInfo, Schema, GROUP_URN, USER_URN};

/// The core User and Group schemas, the common attributes, the Enterprise
/// User extension and doorward's, as one schema: for evaluating a filter
/// or path without knowing which resource type it is about (tests,
/// fuzzing). The server itself uses the per-type
/// [`KindSchema`](definitions::KindSchema). Both read the table in
/// [`definitions`], whose docs list where it departs
/// from RFC 7643 §8.7 (ids held as values are case-exact).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreSchema;

impl Schema for CoreSchema {
    fn attribute(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        definitions::either(uri, name, sub)
    }

    fn is_core(&self, uri: &str) -> bool {
        uri.eq_ignore_ascii_case(USER_URN) || uri.eq_ignore_ascii_case(GROUP_URN)
    }
}
