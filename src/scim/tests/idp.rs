//! What Entra ID and Okta actually send, from their provisioning docs
//! (Microsoft's "Tutorial: Develop and plan provisioning for a SCIM
//! endpoint" and "Known issues ... SCIM 2.0 protocol compliance"; Okta's
//! "SCIM 2.0 Protocol Reference"): the lookup filters, and every PATCH path,
//! including the keys of path-less `replace` value objects.

use serde_json::{json, Value};

use super::parse;
use crate::scim::{lookup, CoreSchema, Filter, FilterError, PatchPath, ENTERPRISE_USER_URN};

/// Entra ID's "Create User" request body, as stored (with the id we issued).
fn entra_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
        "id": "48af03ac28ad4fb88478",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
        }],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE_USER_URN: {"employeeNumber": "100009", "manager": {"value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}}
    })
}

/// Okta's "Create the User" request body, as stored.
fn okta_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "23a35c27-23d3-4c03-b4c5-6443c09e7173",
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "active": true
    })
}

fn group(members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2",
        "members": members
    })
}

fn matches(filter: &str, resource: &Value) -> bool {
    parse(filter)
        .matches(resource, &CoreSchema)
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
}

/// `%XX` decoding, as the HTTP layer will have done before the parser sees a query.
fn percent_decode(query: &str) -> String {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            query.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn entra_lookup_filters() {
    let user = entra_user();
    assert!(matches(
        r#"userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#,
        &user
    ));
    assert!(
        matches(r#"userName eq "test_user_00AA00AA-bb11-cc22-dd33-44ee44ee44ee""#, &user),
        "userName folds case"
    );
    assert!(matches(
        r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
        &user
    ));
    assert!(
        !matches(r#"externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF""#, &user),
        "externalId is case-exact"
    );
    assert!(matches(
        r#"emails[type eq "work"].value eq "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com""#,
        &user
    ));
    assert!(!matches(
        r#"emails[type eq "home"].value eq "test_user_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com""#,
        &user
    ));
    assert!(!matches(r#"userName eq "non-existent user""#, &user));
    // "Test Connection" looks up a random GUID and expects an empty list.
    assert!(!matches(r#"userName eq "7f0b6d0c-34a4-4a8f-8d1e-4b5e8f1f0a55""#, &user));
    assert!(!matches(
        r#"userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081""#,
        &user
    ));
    // Entra only uses eq and and; a compound lookup on the manager reference.
    assert!(matches(
        &format!(
            r#"id eq "48af03ac28ad4fb88478" and {ENTERPRISE_USER_URN}:manager eq "00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#
        ),
        &user
    ));
    let groups = group(&[]);
    assert!(matches(r#"displayName eq "Test SCIMv2""#, &groups));
    assert!(!matches(r#"displayName eq "Group1""#, &groups));
}

#[test]
fn entra_sample_with_an_unquoted_value_is_refused() {
    // The tutorial's sample-code section shows `filter=externalId eq jyoung`;
    // the grammar (and the provisioning service) quote strings. Refused with
    // a detail that says what was expected.
    let e = Filter::parse("externalId eq jyoung").unwrap_err();
    assert!(
        matches!(&e, FilterError::Expected { at: 14, found, .. } if found == "`jyoung`"),
        "{e}"
    );
    assert_eq!(e.scim_type(), "invalidFilter");
}

#[test]
fn okta_lookup_filters() {
    let query = "filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100";
    let filter = percent_decode(query.trim_start_matches("filter=").split('&').next().unwrap());
    assert_eq!(filter, r#"userName eq "test.user@okta.local""#);
    assert!(matches(&filter, &okta_user()));
    assert!(!matches(&filter, &entra_user()));
    assert!(matches(r#"externalId eq "00ujl29u0le5T6Aj10h7""#, &okta_user()));
    assert!(matches(r#"displayName eq "Test SCIMv2""#, &group(&[])));
}

#[test]
fn entra_patch_paths() {
    let user = entra_user();
    // Update User [Multi-valued properties]: replace the work email, and name.familyName.
    let work = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
    assert_eq!(work.matching_indexes(&user, &CoreSchema), Ok(vec![0]));
    assert_eq!(work.attr.sub.as_deref(), Some("value"));
    let family = PatchPath::parse("name.familyName").unwrap();
    assert_eq!(lookup(&user, &family.attr, &CoreSchema), Some(&json!("familyName")));
    // Single-valued, disable (`"value": false`, or the legacy `"False"`), add a nickname.
    for path in ["userName", "active", "nickName", "displayName", "externalId"] {
        assert_eq!(PatchPath::parse(path).unwrap().attr.name, path);
    }
    // Replace with the enterprise extension's full path.
    let number = PatchPath::parse(&format!("{ENTERPRISE_USER_URN}:employeeNumber")).unwrap();
    assert_eq!(lookup(&user, &number.attr, &CoreSchema), Some(&json!("100009")));
    // The path-less replace (aadOptscim062020): each key of the value object is a path.
    let value = json!({
        "displayName": "Bjfe",
        "name.givenName": "Kkom",
        "name.familyName": "Unua",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
    });
    let keys: Vec<PatchPath> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| PatchPath::parse(k).unwrap())
        .collect();
    assert!(keys
        .iter()
        .any(|p| p.attr.uri.as_deref() == Some(ENTERPRISE_USER_URN) && p.attr.name == "employeeNumber"));
    assert!(keys
        .iter()
        .any(|p| p.attr.name == "name" && p.attr.sub.as_deref() == Some("givenName")));
    // The manager reference, legacy (`manager`) and mapped (URN-qualified).
    assert_eq!(PatchPath::parse("manager").unwrap().attr.name, "manager");
    let manager = PatchPath::parse(&format!("{ENTERPRISE_USER_URN}:manager")).unwrap();
    assert_eq!(
        lookup(&user, &manager.attr, &CoreSchema).and_then(|m| m.get("value")),
        Some(&json!("00aa00aa-bb11-cc22-dd33-44ee44ee44ee"))
    );
}

#[test]
fn entra_attribute_mapping_targets_parse() {
    let user = json!({
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "fax", "value": "+1 555 0199"}],
        "addresses": [{"type": "work", "postalCode": "98052"}, {"type": "other", "formatted": "Building 1"}],
        "emails": [{"type": "work", "value": "a@contoso.com"}, {"type": "other", "value": "b@contoso.com"}]
    });
    for (path, index) in [
        (r#"phoneNumbers[type eq "fax"].value"#, Some(1)),
        (r#"phoneNumbers[type eq "mobile"].value"#, None),
        (r#"phoneNumbers[type eq "work"].value"#, Some(0)),
        (r#"addresses[type eq "work"].postalCode"#, Some(0)),
        (r#"addresses[type eq "work"].streetAddress"#, Some(0)),
        (r#"addresses[type eq "other"].Formatted"#, Some(1)),
        (r#"emails[type eq "other"].Value"#, Some(1)),
        (r#"emails[type eq "work"].value"#, Some(0)),
    ] {
        let parsed = PatchPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            parsed.matching_indexes(&user, &CoreSchema).unwrap(),
            index.into_iter().collect::<Vec<_>>(),
            "{path}"
        );
    }
    for path in [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag",
        "name.givenName",
        "name.familyName",
        "title",
    ] {
        let parsed = PatchPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(parsed.to_string(), path);
    }
}

#[test]
fn group_membership_patches() {
    // Entra ID (aadOptscim062020) and Okta remove a member by value path.
    let entra = group(&["f648f8d5ea4e4cd38e9c", "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]);
    let remove = PatchPath::parse(r#"members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]"#).unwrap();
    assert_eq!(remove.matching_indexes(&entra, &CoreSchema), Ok(vec![1]));
    let okta = group(&[
        "89bb1940-b905-4575-9e7f-6f887cfb368e",
        "23a35c27-23d3-4c03-b4c5-6443c09e7173",
    ]);
    let remove = PatchPath::parse(r#"members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]"#).unwrap();
    assert_eq!(remove.matching_indexes(&okta, &CoreSchema), Ok(vec![0]));
    // Add members, replace members, and Entra's legacy remove-with-value all
    // target the whole attribute; the PATCH code matches the values itself.
    let members = PatchPath::parse("members").unwrap();
    assert_eq!(members.filter, None);
    assert_eq!(members.matching_indexes(&okta, &CoreSchema), Ok(vec![0, 1]));
    // Okta's group rename is a path-less replace: `id` and `displayName` keys.
    for key in ["id", "displayName"] {
        assert_eq!(PatchPath::parse(key).unwrap().attr.name, key);
    }
    // A member filter on a group with no members selects nothing.
    assert_eq!(remove.matching_indexes(&group(&[]), &CoreSchema), Ok(vec![]));
}

#[test]
fn whole_extension_path() {
    // scim2-tester (and some IdPs) add or replace the whole extension object
    // with the extension's URN as the path. It parses as URI `...:2.0` and
    // attribute `User`; its printed form is the URN again, and `lookup`
    // resolves it to the extension object.
    let path = PatchPath::parse(ENTERPRISE_USER_URN).unwrap();
    assert_eq!(
        path.attr.uri.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0")
    );
    assert_eq!(path.attr.name, "User");
    assert!(path.to_string().eq_ignore_ascii_case(ENTERPRISE_USER_URN));
    let user = entra_user();
    let ext = lookup(&user, &path.attr, &CoreSchema).unwrap();
    assert_eq!(ext["employeeNumber"], json!("100009"));
}
