//! The schemas doorward's SCIM server speaks, as one table: the core User
//! and Group (RFC 7643 §4, §8.7.1), the Enterprise User extension (§4.3),
//! and doorward's own extension, whose `roles` become the user's roles.
//!
//! Everything reads this table: `/Schemas` publishes it, the filter
//! evaluator takes case rules and types from it ([`KindSchema`], and the
//! union [`super::CoreSchema`]), and writes are checked and normalised
//! against it. So what discovery says is what the server does.
//!
//! Departures from RFC 7643 §8.7.1, each deliberate:
//! - ids held as values (`groups.value`, `members.value`, `manager.value`
//!   and their `$ref`s) are case-exact, as `id` is, so a filter or a member
//!   removal cannot hit the resource whose id differs only in case;
//! - `members.display` is read-only and returned on request only: doorward
//!   derives it from the member's userName rather than storing what a
//!   client sent, and a client comparing the members it wrote with the
//!   members it reads back must see the same values;
//! - `members.$ref` and `members.type` name users only: groups do not nest.

use serde_json::{json, Value};

use super::schema::{AttrInfo, AttrType, Schema, ENTERPRISE_USER_URN, GROUP_URN, USER_URN};
use crate::directory::DOORWARD_USER_SCHEMA;

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// One attribute or sub-attribute.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// `uniqueness: server` (userName); otherwise none.
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub refs: &'static [&'static str],
    pub sub: &'static [Attr],
    pub description: &'static str,
}

impl Attr {
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            multi: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            unique: false,
            canonical: &[],
            refs: &[],
            sub: &[],
            description,
        }
    }
    const fn text(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }
    const fn complex(name: &'static str, sub: &'static [Attr], description: &'static str) -> Self {
        Self {
            sub,
            ..Self::new(name, AttrType::Complex, description)
        }
    }
    const fn reference(name: &'static str, refs: &'static [&'static str], description: &'static str) -> Self {
        Self {
            refs,
            case_exact: true,
            ..Self::new(name, AttrType::Reference, description)
        }
    }
    const fn multi(self) -> Self {
        Self { multi: true, ..self }
    }
    const fn exact(self) -> Self {
        Self {
            case_exact: true,
            ..self
        }
    }
    const fn read_only(self) -> Self {
        Self {
            mutability: Mutability::ReadOnly,
            ..self
        }
    }
    const fn immutable(self) -> Self {
        Self {
            mutability: Mutability::Immutable,
            ..self
        }
    }
    const fn canonical(self, canonical: &'static [&'static str]) -> Self {
        Self { canonical, ..self }
    }

    /// What the filter evaluator needs to know.
    pub fn info(&self) -> AttrInfo {
        AttrInfo {
            filterable: self.returned != Returned::Never,
            ..AttrInfo::new(self.ty, self.multi, self.case_exact)
        }
    }

    /// The sub-attribute `name`, ignoring case.
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        find(self.sub, name)
    }

    /// Whether values of this attribute can be given as a bare `value`
    /// (a complex attribute with a `value` sub-attribute).
    pub fn has_value(&self) -> bool {
        self.sub_attr("value").is_some()
    }

    /// The RFC 7643 §7 representation, for `/Schemas`.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "type": type_name(self.ty),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Never => "never",
                Returned::Default => "default",
                Returned::Request => "request",
            },
            "uniqueness": if self.unique { "server" } else { "none" },
        });
        if !self.canonical.is_empty() {
            out["canonicalValues"] = json!(self.canonical);
        }
        if !self.refs.is_empty() {
            out["referenceTypes"] = json!(self.refs);
        }
        if !self.sub.is_empty() {
            out["subAttributes"] = Value::Array(self.sub.iter().map(Attr::to_json).collect());
        }
        out
    }
}

fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}

/// The attribute `name` in `attrs`, ignoring ASCII case (RFC 7643 §2.1).
pub fn find(attrs: &'static [Attr], name: &str) -> Option<&'static Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// One schema: its URN and attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attr],
}

impl SchemaDef {
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        find(self.attributes, name)
    }

    /// The RFC 7643 §7 representation; `location` is where it is served.
    pub fn to_json(&self, location: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attr::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": location},
        })
    }
}

/// `value`, `display`, `type` and `primary` of the plural attributes.
const fn plural(value: Attr, canonical: &'static [&'static str]) -> [Attr; 4] {
    [
        value,
        Attr::text("display", "A human-readable name, primarily used for display purposes."),
        Attr::text("type", "A label indicating the attribute's function.").canonical(canonical),
        Attr::new("primary", AttrType::Boolean, "Whether this is the primary value."),
    ]
}

const VALUE: Attr = Attr::text("value", "The value.");
const EMAILS: [Attr; 4] = plural(VALUE, &["work", "home", "other"]);
const PHONES: [Attr; 4] = plural(VALUE, &["work", "home", "mobile", "fax", "pager", "other"]);
const IMS: [Attr; 4] = plural(VALUE, &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]);
const PHOTOS: [Attr; 4] = plural(
    Attr::reference("value", &["external"], "The URL of a photo of the user."),
    &["photo", "thumbnail"],
);
const PLAIN: [Attr; 4] = plural(VALUE, &[]);
const CERTIFICATES: [Attr; 4] = plural(
    Attr::new("value", AttrType::Binary, "A DER-encoded X.509 certificate, base64.").exact(),
    &[],
);

const NAME: [Attr; 6] = [
    Attr::text("formatted", "The full name, formatted for display."),
    Attr::text("familyName", "The family name."),
    Attr::text("givenName", "The given name."),
    Attr::text("middleName", "The middle name(s)."),
    Attr::text("honorificPrefix", "The honorific prefix(es), e.g. 'Ms.'."),
    Attr::text("honorificSuffix", "The honorific suffix(es), e.g. 'III'."),
];

const ADDRESS: [Attr; 8] = [
    Attr::text("formatted", "The full mailing address."),
    Attr::text("streetAddress", "The street address."),
    Attr::text("locality", "The city or locality."),
    Attr::text("region", "The state or region."),
    Attr::text("postalCode", "The zip code or postal code."),
    Attr::text("country", "The country name (ISO 3166-1 alpha-2)."),
    Attr::text("type", "A label indicating the address's function.").canonical(&["work", "home", "other"]),
    Attr::new("primary", AttrType::Boolean, "Whether this is the primary address."),
];

const USER_GROUPS: [Attr; 4] = [
    Attr::text("value", "The id of the group.").exact().read_only(),
    Attr::reference("$ref", &["Group"], "The URI of the group.").read_only(),
    Attr::text("display", "The group's displayName.").read_only(),
    Attr::text("type", "How the user is a member.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];

const USER_ATTRS: [Attr; 21] = [
    Attr {
        required: true,
        unique: true,
        ..Attr::text(
            "userName",
            "Unique identifier for the user, used to match logins. REQUIRED.",
        )
    },
    Attr::complex("name", &NAME, "The components of the user's real name."),
    Attr::text("displayName", "The name of the user, suitable for display."),
    Attr::text("nickName", "The casual way to address the user."),
    Attr::reference("profileUrl", &["external"], "A URI to the user's online profile."),
    Attr::text("title", "The user's title."),
    Attr::text("userType", "The relationship between the organization and the user."),
    Attr::text("preferredLanguage", "The user's preferred written or spoken language."),
    Attr::text("locale", "The user's default location, e.g. 'en-US'."),
    Attr::text("timezone", "The user's time zone, e.g. 'America/Los_Angeles'."),
    Attr::new(
        "active",
        AttrType::Boolean,
        "Whether the user may log in; false ends their sessions.",
    ),
    Attr {
        mutability: Mutability::WriteOnly,
        returned: Returned::Never,
        case_exact: true,
        ..Attr::text("password", "Accepted and discarded: doorward never stores passwords.")
    },
    Attr::complex("emails", &EMAILS, "Email addresses for the user.").multi(),
    Attr::complex("phoneNumbers", &PHONES, "Phone numbers for the user.").multi(),
    Attr::complex("ims", &IMS, "Instant messaging addresses for the user.").multi(),
    Attr::complex("photos", &PHOTOS, "URLs of photos of the user.").multi(),
    Attr::complex("addresses", &ADDRESS, "A physical mailing address for this user.").multi(),
    Attr::complex("groups", &USER_GROUPS, "The groups the user belongs to.")
        .multi()
        .read_only(),
    Attr::complex("entitlements", &PLAIN, "Entitlements for the user.").multi(),
    Attr::complex(
        "roles",
        &PLAIN,
        "Roles for the user (the core attribute; see doorward's extension).",
    )
    .multi(),
    Attr::complex("x509Certificates", &CERTIFICATES, "X.509 certificates of the user.").multi(),
];

const MANAGER: [Attr; 3] = [
    Attr::text("value", "The id of the manager's User resource.").exact(),
    Attr::reference("$ref", &["User"], "The URI of the manager's User resource."),
    Attr::text("displayName", "The manager's displayName.").read_only(),
];

const ENTERPRISE_ATTRS: [Attr; 6] = [
    Attr::text(
        "employeeNumber",
        "A string identifier, typically numeric or alphanumeric.",
    ),
    Attr::text("costCenter", "The name of a cost center."),
    Attr::text("organization", "The name of an organization."),
    Attr::text("division", "The name of a division."),
    Attr::text("department", "The name of a department."),
    Attr::complex("manager", &MANAGER, "The user's manager."),
];

const DOORWARD_ATTRS: [Attr; 1] = [Attr::complex(
    "roles",
    &PLAIN,
    "Roles doorward gives the user (sent upstream in the roles header, through [identity.roles]). \
     A list of strings is accepted too.",
)
.multi()];

const MEMBER: [Attr; 4] = [
    Attr::text("value", "The id of a User that is a member.")
        .exact()
        .immutable(),
    Attr::reference("$ref", &["User"], "The URI of the member's User resource.").immutable(),
    Attr::text("type", "The type of the member: users only (groups do not nest).")
        .canonical(&["User"])
        .immutable(),
    Attr {
        returned: Returned::Request,
        ..Attr::text("display", "The member's userName (returned when asked for).").read_only()
    },
];

const GROUP_ATTRS: [Attr; 2] = [
    Attr {
        required: true,
        ..Attr::text("displayName", "A human-readable name for the group. REQUIRED.")
    },
    Attr::complex("members", &MEMBER, "The members of the group (users).").multi(),
];

pub static USER: SchemaDef = SchemaDef {
    id: USER_URN,
    name: "User",
    description: "User Account",
    attributes: &USER_ATTRS,
};

pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_ATTRS,
};

pub static DOORWARD_USER: SchemaDef = SchemaDef {
    id: DOORWARD_USER_SCHEMA,
    name: "DoorwardUser",
    description: "What doorward needs beyond the core schema: the user's roles.",
    attributes: &DOORWARD_ATTRS,
};

pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_URN,
    name: "Group",
    description: "Group",
    attributes: &GROUP_ATTRS,
};

/// Every schema, in the order `/Schemas` lists them.
pub static ALL: [&SchemaDef; 4] = [&USER, &ENTERPRISE_USER, &DOORWARD_USER, &GROUP];

const META: [Attr; 5] = [
    Attr::text("resourceType", "").exact(),
    Attr::new("created", AttrType::DateTime, ""),
    Attr::new("lastModified", AttrType::DateTime, ""),
    Attr::reference("location", &["uri"], ""),
    Attr::text("version", "").exact(),
];

/// The common attributes of RFC 7643 §3.1: on every resource, in no schema.
const COMMON: [Attr; 4] = [
    Attr {
        returned: Returned::Always,
        ..Attr::text("id", "").exact().read_only()
    },
    Attr::text("externalId", "").exact(),
    Attr::reference("schemas", &["uri"], "").multi(),
    Attr::complex("meta", &META, "").read_only(),
];

pub fn common(name: &str) -> Option<&'static Attr> {
    find(&COMMON, name)
}

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn core(self) -> &'static SchemaDef {
        match self {
            Kind::User => &USER,
            Kind::Group => &GROUP,
        }
    }

    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        static USER_EXTENSIONS: [&SchemaDef; 2] = [&ENTERPRISE_USER, &DOORWARD_USER];
        match self {
            Kind::User => &USER_EXTENSIONS,
            Kind::Group => &[],
        }
    }

    /// The extension whose URN is `uri`, ignoring case.
    pub fn extension(self, uri: &str) -> Option<&'static SchemaDef> {
        self.extensions()
            .iter()
            .copied()
            .find(|e| e.id.eq_ignore_ascii_case(uri))
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "/Users",
            Kind::Group => "/Groups",
        }
    }

    /// An attribute of the core schema or a common one.
    pub fn core_attr(self, name: &str) -> Option<&'static Attr> {
        self.core().attr(name).or_else(|| common(name))
    }
}

/// The filter evaluator's view of one resource type.
#[derive(Debug, Clone, Copy)]
pub struct KindSchema(pub Kind);

impl Schema for KindSchema {
    fn attribute(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        let attr = match uri {
            Some(uri) if !self.is_core(uri) => self.0.extension(uri)?.attr(name)?,
            _ => self.0.core_attr(name)?,
        };
        match sub {
            None => Some(attr.info()),
            Some(sub) => attr.sub_attr(sub).map(Attr::info),
        }
    }

    fn is_core(&self, uri: &str) -> bool {
        uri.eq_ignore_ascii_case(self.0.core().id)
    }
}

/// Users and groups at once (the parsers' tests and fuzzing evaluate
/// filters without knowing which resource they hold).
pub(super) fn either(uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo> {
    KindSchema(Kind::User)
        .attribute(uri, name, sub)
        .or_else(|| KindSchema(Kind::Group).attribute(uri, name, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_publishes_valid_characteristics() {
        for schema in ALL {
            let text = schema.to_json("http://x/Schemas").to_string();
            assert!(!text.contains("\"name\":\"\""), "{}: an unnamed attribute", schema.id);
            for attr in schema.attributes {
                assert!(attr.sub.is_empty() || attr.ty == AttrType::Complex, "{}", attr.name);
                assert!(
                    attr.sub.iter().all(|s| s.sub.is_empty()),
                    "{}: sub-attributes nest once",
                    attr.name
                );
            }
        }
        assert_eq!(USER.attributes.len(), 21);
        assert_eq!(USER.attr("X509CERTIFICATES").map(|a| a.multi), Some(true));
    }

    #[test]
    fn lookups_fold_case_and_see_extensions_and_common_attributes() {
        let users = KindSchema(Kind::User);
        assert_eq!(
            users.attribute(None, "USERNAME", None).map(|i| i.case_exact),
            Some(false)
        );
        assert_eq!(users.attribute(None, "id", None).map(|i| i.case_exact), Some(true));
        assert_eq!(
            users
                .attribute(Some(ENTERPRISE_USER_URN), "manager", Some("value"))
                .map(|i| i.case_exact),
            Some(true)
        );
        assert_eq!(
            users
                .attribute(Some(DOORWARD_USER_SCHEMA), "roles", None)
                .map(|i| i.multi_valued),
            Some(true)
        );
        assert_eq!(
            users.attribute(None, "password", None).map(|i| i.filterable),
            Some(false)
        );
        assert!(
            users.attribute(None, "members", None).is_none(),
            "users have no members"
        );
        assert!(KindSchema(Kind::Group)
            .attribute(None, "members", Some("value"))
            .is_some());
        assert!(users.attribute(Some("urn:x:y"), "tag", None).is_none());
    }
}
