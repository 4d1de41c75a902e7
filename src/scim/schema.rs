//! What the evaluator needs to know about an attribute (RFC 7643 §2.2): its
//! type, whether it is multi-valued, whether strings compare case-exactly,
//! and whether it may be filtered on at all. The caller supplies this through
//! [`Schema`]; [`CoreSchema`](super::CoreSchema) knows the User, Group and
//! Enterprise User schemas of RFC 7643 §4 and §8.7.
//!
//! An attribute the schema does not know is still evaluated, from its JSON
//! type, with the RFC 7643 §2.2 defaults (not case-exact, single-valued).

/// `urn:ietf:params:scim:schemas:core:2.0:User`
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// `urn:ietf:params:scim:schemas:core:2.0:Group`
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The data types of RFC 7643 §2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// The characteristics of one attribute or sub-attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrInfo {
    pub ty: AttrType,
    pub multi_valued: bool,
    pub case_exact: bool,
    /// False for attributes never returned (`password`): answering filters
    /// on them would turn `password sw "a"` into an oracle for the secret.
    pub filterable: bool,
}

impl AttrInfo {
    pub const fn new(ty: AttrType, multi_valued: bool, case_exact: bool) -> Self {
        Self {
            ty,
            multi_valued,
            case_exact,
            filterable: true,
        }
    }
}

/// Attribute characteristics, supplied by the caller.
pub trait Schema {
    /// The characteristics of `name` (or of its sub-attribute `sub`) in the
    /// extension schema `uri`, or in the resource's core schema when `uri` is
    /// `None`. Names compare case-insensitively. `None` when unknown.
    fn attribute(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo>;

    /// Whether `uri` names a core schema, whose attributes sit at the top
    /// level of the resource, rather than an extension, whose attributes sit
    /// under a key equal to its URN.
    fn is_core(&self, uri: &str) -> bool;
}
