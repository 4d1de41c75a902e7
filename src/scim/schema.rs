//! What the evaluator needs to know about an attribute (RFC 7643 §2.2): its
//! type, whether it is multi-valued, whether strings compare case-exactly,
//! and whether it may be filtered on at all. The caller supplies this through
//! [`Schema`]; [`CoreSchema`] knows the User, Group and Enterprise User
//! schemas of RFC 7643 §4 and §8.7.
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

/// The core User and Group schemas, the common attributes, and the
/// Enterprise User extension.
///
/// One deliberate departure from the JSON of RFC 7643 §8.7: sub-attributes
/// that hold another resource's `id` (`members.value`, `groups.value`,
/// `manager.value` and their `$ref`s) are case-exact, as `id` itself is
/// (RFC 7643 §3.1). Otherwise `members[value eq "abc"]` in a remove would also
/// remove the member whose id is `ABC`. The python-scim reference server
/// (scim2-server) makes the same choice.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreSchema;

const TEXT: AttrInfo = AttrInfo::new(AttrType::String, false, false);
const EXACT: AttrInfo = AttrInfo::new(AttrType::String, false, true);
const BOOL: AttrInfo = AttrInfo::new(AttrType::Boolean, false, false);
const DATE: AttrInfo = AttrInfo::new(AttrType::DateTime, false, false);
const URI: AttrInfo = AttrInfo::new(AttrType::Reference, false, false);
const URI_EXACT: AttrInfo = AttrInfo::new(AttrType::Reference, false, true);
const COMPLEX: AttrInfo = AttrInfo::new(AttrType::Complex, false, false);
const MULTI_COMPLEX: AttrInfo = AttrInfo::new(AttrType::Complex, true, false);

impl CoreSchema {
    fn core(name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        let name = name.to_ascii_lowercase();
        let sub = sub.map(str::to_ascii_lowercase);
        let info = match (name.as_str(), sub.as_deref()) {
            // Common attributes (RFC 7643 §3.1).
            ("id" | "externalid", None) => EXACT,
            ("schemas", None) => AttrInfo::new(AttrType::Reference, true, false),
            ("meta", None) => COMPLEX,
            ("meta", Some("resourcetype" | "version")) => EXACT,
            ("meta", Some("created" | "lastmodified")) => DATE,
            ("meta", Some("location")) => URI_EXACT,
            // User (RFC 7643 §4.1).
            ("username" | "displayname" | "nickname" | "title" | "usertype", None) => TEXT,
            ("preferredlanguage" | "locale" | "timezone", None) => TEXT,
            ("profileurl", None) => URI,
            ("active", None) => BOOL,
            ("password", None) => AttrInfo {
                filterable: false,
                ..TEXT
            },
            ("name", None) => COMPLEX,
            (
                "name",
                Some("formatted" | "familyname" | "givenname" | "middlename" | "honorificprefix" | "honorificsuffix"),
            ) => TEXT,
            ("emails" | "phonenumbers" | "ims" | "photos" | "entitlements" | "roles" | "x509certificates", None) => {
                MULTI_COMPLEX
            }
            ("photos", Some("value")) => URI,
            ("x509certificates", Some("value")) => AttrInfo::new(AttrType::Binary, false, true),
            ("emails" | "phonenumbers" | "ims" | "entitlements" | "roles", Some("value")) => TEXT,
            (
                "emails" | "phonenumbers" | "ims" | "photos" | "entitlements" | "roles" | "x509certificates",
                Some("display" | "type"),
            ) => TEXT,
            ("addresses", None) => MULTI_COMPLEX,
            (
                "addresses",
                Some("formatted" | "streetaddress" | "locality" | "region" | "postalcode" | "country" | "type"),
            ) => TEXT,
            (
                "emails" | "phonenumbers" | "ims" | "photos" | "addresses" | "entitlements" | "roles"
                | "x509certificates",
                Some("primary"),
            ) => BOOL,
            // User.groups (RFC 7643 §4.1.2) and Group.members (§4.2): the
            // values are resource ids, so case-exact (see the type's docs).
            ("groups" | "members", None) => MULTI_COMPLEX,
            ("groups" | "members", Some("value")) => EXACT,
            ("groups" | "members", Some("$ref")) => URI_EXACT,
            ("groups" | "members", Some("display" | "type")) => TEXT,
            _ => return None,
        };
        Some(info)
    }

    fn enterprise(name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        let name = name.to_ascii_lowercase();
        let sub = sub.map(str::to_ascii_lowercase);
        let info = match (name.as_str(), sub.as_deref()) {
            ("employeenumber" | "costcenter" | "organization" | "division" | "department", None) => TEXT,
            ("manager", None) => COMPLEX,
            ("manager", Some("value")) => EXACT,
            ("manager", Some("$ref")) => URI_EXACT,
            ("manager", Some("displayname")) => TEXT,
            _ => return None,
        };
        Some(info)
    }
}

impl Schema for CoreSchema {
    fn attribute(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        match uri {
            None => Self::core(name, sub),
            Some(uri) if self.is_core(uri) => Self::core(name, sub),
            Some(uri) if uri.eq_ignore_ascii_case(ENTERPRISE_USER_URN) => Self::enterprise(name, sub),
            Some(_) => None,
        }
    }

    fn is_core(&self, uri: &str) -> bool {
        uri.eq_ignore_ascii_case(USER_URN) || uri.eq_ignore_ascii_case(GROUP_URN)
    }
}
