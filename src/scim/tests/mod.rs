//! Tests of the public API, in files by subject. Shared fixtures live here:
//! three users shaped like RFC 7643 §8.2 examples, chosen so that every
//! filter of RFC 7644 §3.4.2.2 selects a different, checkable subset.

mod eval;
mod fuzz;
mod idp;
mod parse_filter;
mod parse_path;
mod service;

use serde_json::{json, Value};

use crate::scim::{CoreSchema, Filter};

pub(crate) const RFC_FILTERS: [&str; 17] = [
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
];

/// Barbara Jensen (RFC 7643 §8.2, trimmed): an employee with a title, a work
/// address at example.com and the enterprise extension.
pub(crate) fn bjensen() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "postalCode": "91608"}],
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjE"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\""
        }
    })
}

/// Jim O'Malley: an intern with no title, a non-example address, an xmpp
/// handle at foo.com, modified later (written with a +02:00 offset).
pub(crate) fn jomalley() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "c3a26dd3-27a0-4dec-a2ac-ce211e105f97",
        "userName": "JOMalley",
        "name": {"familyName": "O'Malley", "givenName": "Jim"},
        "userType": "Intern",
        "active": false,
        "emails": [{"value": "jim@foo.org", "type": "work"}],
        "ims": [{"value": "jim@foo.com", "type": "xmpp"}],
        "meta": {"resourceType": "User", "lastModified": "2011-05-14T00:00:00+02:00"}
    })
}

/// Jane Doe: an employee whose title is empty (so not present), with only a
/// home address at example.org, modified at the same instant as bjensen but
/// written with milliseconds.
pub(crate) fn jdoe() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "5d48a0a8e9f04aa38008",
        "userName": "jdoe",
        "title": "",
        "userType": "Employee",
        "emails": [{"value": "jdoe@example.org", "type": "home"}],
        "meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34.000Z"}
    })
}

pub(crate) fn parse(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The userNames of the fixture users that `filter` matches.
pub(crate) fn selected(filter: &str) -> Vec<String> {
    let filter = parse(filter);
    [bjensen(), jomalley(), jdoe()]
        .iter()
        .filter(|u| {
            filter
                .matches(u, &CoreSchema)
                .unwrap_or_else(|e| panic!("{filter}: {e}"))
        })
        .map(|u| u["userName"].as_str().unwrap_or_default().to_string())
        .collect()
}
