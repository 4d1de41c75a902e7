//! The PATCH path grammar, its printed form, and its refusals.

use serde_json::json;

use super::parse;
use crate::scim::{AttrPath, CoreSchema, FilterError, PatchPath, PathError, ENTERPRISE_USER_URN, MAX_FILTER_LEN};

fn path(text: &str) -> PatchPath {
    PatchPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> PathError {
    match PatchPath::parse(text) {
        Ok(p) => panic!("{text:?} parsed as {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn plain_sub_attribute_and_urn_paths() {
    assert_eq!(
        path("active"),
        PatchPath {
            attr: AttrPath::new("active"),
            filter: None
        }
    );
    let given = path("name.givenName");
    assert_eq!(
        given.attr,
        AttrPath {
            uri: None,
            name: "name".into(),
            sub: Some("givenName".into())
        }
    );
    assert_eq!(given.target(), given.attr);
    let manager = path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager");
    assert_eq!(manager.attr.uri.as_deref(), Some(ENTERPRISE_USER_URN));
    assert_eq!(manager.attr.name, "manager");
    let value = path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value");
    assert_eq!(value.attr.sub.as_deref(), Some("value"));
}

#[test]
fn value_paths_with_and_without_a_sub_attribute() {
    let remove = path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#);
    assert_eq!(remove.attr, AttrPath::new("members"));
    assert_eq!(
        remove.filter,
        Some(parse(r#"value eq "2819c223-7f76-453a-919d-413861904646""#))
    );
    let work = path(r#"emails[type eq "work"].value"#);
    assert_eq!(
        work.attr,
        AttrPath {
            uri: None,
            name: "emails".into(),
            sub: Some("value".into())
        }
    );
    assert_eq!(work.target(), AttrPath::new("emails"));
    assert_eq!(work.filter, Some(parse(r#"type eq "work""#)));
    let street = path(r#"addresses[type eq "work" and primary eq true].streetAddress"#);
    assert_eq!(street.attr.sub.as_deref(), Some("streetAddress"));
    let urn = path(r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value"#);
    assert_eq!(
        urn.target().uri.as_deref(),
        Some("urn:ietf:params:scim:schemas:core:2.0:User")
    );
}

#[test]
fn paths_print_back_to_themselves() {
    for text in [
        "active",
        "name.givenName",
        "members",
        r#"members[value eq "2819c223"]"#,
        r#"emails[type eq "work"].value"#,
        r#"emails[type eq "other"].Value"#,
        r#"addresses[type eq "work" or type eq "home"].streetAddress"#,
        r#"emails[not (type eq "work")]"#,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "members.$ref",
    ] {
        let parsed = path(text);
        assert_eq!(parsed.to_string(), text);
        assert_eq!(PatchPath::parse(&parsed.to_string()), Ok(parsed));
    }
    assert_eq!(
        path(r#"  members[ VALUE EQ "x" ]  "#).to_string(),
        r#"members[VALUE eq "x"]"#
    );
}

#[test]
fn refusals_map_to_invalid_path_or_invalid_filter() {
    assert_eq!(err(""), PathError::Empty);
    assert_eq!(err("   ").scim_type(), "invalidPath");
    let long = "a".repeat(MAX_FILTER_LEN + 1);
    assert_eq!(
        err(&long),
        PathError::TooLong {
            len: MAX_FILTER_LEN + 1,
            max: MAX_FILTER_LEN
        }
    );
    // The attribute part is an invalidPath...
    for (text, at) in [
        ("a..b", 0),
        ("name.givenName.x", 0),
        ("1name", 0),
        (r#"name.givenName[type eq "x"]"#, 14),
        (r#"members[value eq "x"] junk"#, 22),
        (r#"members[value eq "x"]."#, 22),
        (r#"members[value eq "x"].a.b"#, 23),
        ("userName eq \"x\"", 9),
        ("(members)", 0),
    ] {
        let e = err(text);
        assert!(matches!(e, PathError::Invalid(_)), "{text}: {e:?}");
        assert_eq!(e.scim_type(), "invalidPath", "{text}");
        assert_eq!(e.position(), Some(at), "{text}: {e}");
    }
    // ...the value filter inside the brackets an invalidFilter (RFC 7644 Table 9).
    for (text, at) in [
        (r#"members[value eq "x""#, 20),
        ("members[value eq]", 16),
        (r#"members[value regex "x"]"#, 14),
        (r#"members[value eq "x"#, 17),
        ("members[]", 8),
        ("emails[x[y eq 1]]", 8),
    ] {
        let e = err(text);
        assert!(matches!(e, PathError::Filter(_)), "{text}: {e:?}");
        assert_eq!(e.scim_type(), "invalidFilter", "{text}");
        assert_eq!(e.position(), Some(at), "{text}: {e}");
    }
    assert!(matches!(
        err("members[value eq \"x\""),
        PathError::Filter(FilterError::Expected { .. })
    ));
}

#[test]
fn value_path_selects_elements_by_index() {
    let group = json!({
        "displayName": "Tour Guides",
        "members": [
            {"value": "abc", "display": "A"},
            {"value": "ABC", "display": "B"},
            {"value": "def", "display": "C"},
            null,
            {"value": "abc", "display": "D"}
        ]
    });
    // members.value holds ids: case-exact, so `ABC` is not removed with `abc`.
    let remove = path(r#"members[value eq "abc"]"#);
    assert_eq!(remove.matching_indexes(&group, &CoreSchema), Ok(vec![0, 4]));
    assert_eq!(
        path(r#"members[display eq "b"]"#).matching_indexes(&group, &CoreSchema),
        Ok(vec![1])
    );
    assert_eq!(
        path("members").matching_indexes(&group, &CoreSchema),
        Ok(vec![0, 1, 2, 3, 4])
    );
    assert_eq!(
        path(r#"MEMBERS[VALUE eq "def"]"#).matching_indexes(&group, &CoreSchema),
        Ok(vec![2])
    );
    assert_eq!(
        path(r#"members[value eq "zzz"]"#).matching_indexes(&group, &CoreSchema),
        Ok(vec![])
    );
    assert_eq!(
        path(r#"emails[type eq "work"]"#).matching_indexes(&group, &CoreSchema),
        Ok(vec![])
    );
    // Schema errors in the value filter surface here, before anything is touched.
    let bad = path("members[value gt true]");
    assert!(matches!(
        bad.matching_indexes(&group, &CoreSchema),
        Err(FilterError::InvalidComparison { .. })
    ));
}

#[test]
fn value_path_on_simple_multi_valued_attribute() {
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN]});
    let p = path(&format!(r#"schemas[value eq "{ENTERPRISE_USER_URN}"]"#));
    assert_eq!(p.matching_indexes(&user, &CoreSchema), Ok(vec![1]));
}
