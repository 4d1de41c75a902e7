//! Evaluation: the RFC examples on sample users, and each rule of `eval.rs`
//! and `check.rs` on its own.

use serde_json::{json, Value};

use super::{bjensen, parse, selected, RFC_FILTERS};
use crate::scim::{lookup, AttrInfo, AttrPath, AttrType, CoreSchema, FilterError, Schema, ENTERPRISE_USER_URN};

fn matches(filter: &str, resource: &Value) -> bool {
    parse(filter)
        .matches(resource, &CoreSchema)
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn refused(filter: &str) -> FilterError {
    match parse(filter).matches(&bjensen(), &CoreSchema) {
        Ok(m) => panic!("{filter} evaluated to {m}"),
        Err(e) => e,
    }
}

#[test]
fn rfc_examples_select_the_expected_users() {
    let expected: [&[&str]; 17] = [
        &["bjensen"],
        &["JOMalley"],
        &["JOMalley", "jdoe"],
        &["JOMalley", "jdoe"],
        &["bjensen"],
        &["JOMalley"],
        &["bjensen", "JOMalley", "jdoe"],
        &[],
        &["bjensen", "jdoe"],
        &["bjensen"],
        &["bjensen", "JOMalley"],
        &["bjensen"],
        &["bjensen", "jdoe"],
        &["JOMalley"],
        &["bjensen"],
        &["bjensen"],
        &["bjensen", "JOMalley"],
    ];
    for (filter, want) in RFC_FILTERS.iter().zip(expected) {
        assert_eq!(selected(filter), want, "{filter}");
    }
}

#[test]
fn names_fold_case_and_case_exactness_follows_the_schema() {
    let user = bjensen();
    assert!(matches(r#"USERNAME eq "BJENSEN""#, &user), "userName is not case-exact");
    assert!(matches(r#"name.GIVENNAME sw "bar""#, &user));
    assert!(matches(r#"displayName co "JENSEN""#, &user));
    assert!(matches(r#"ID eq "2819c223-7f76-453a-919d-413861904646""#, &user));
    assert!(
        !matches(r#"id eq "2819C223-7F76-453A-919D-413861904646""#, &user),
        "id is case-exact"
    );
    assert!(matches(r#"externalId eq "701984""#, &user));
    assert!(
        !matches(r#"meta.resourceType eq "user""#, &user),
        "resourceType is case-exact"
    );
    assert!(!matches(
        r#"groups.value eq "E9E30DBA-F08F-4109-8486-D5C6A331660A""#,
        &user
    ));
    assert!(matches(r#"emails[TYPE eq "WORK"]"#, &user));
    // An attribute the schema does not know compares case-insensitively (RFC 7643 §2.2 default).
    assert!(matches(
        r#"nickname eq "x" or custom eq "ABC""#,
        &json!({"custom": "abc"})
    ));
}

#[test]
fn schema_urn_prefixes() {
    let user = bjensen();
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#,
        &user
    ));
    assert!(matches(
        r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName eq "jensen""#,
        &user
    ));
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert!(matches(&format!(r#"{ext}:employeeNumber eq "701984""#), &user));
    assert!(matches(
        &format!(r#"{ext}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
        &user
    ));
    assert!(matches(
        &format!(r#"{ext}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
        &user
    ));
    assert!(matches(&format!("{ext} pr"), &user), "the whole extension is present");
    assert!(!matches(&format!("{ext} pr"), &super::jdoe()));
    // Without the prefix, an extension attribute is not a core one.
    assert!(!matches(r#"employeeNumber eq "701984""#, &user));
    assert!(!matches(r#"urn:example:other:1.0:User:userName eq "bjensen""#, &user));
}

#[test]
fn presence() {
    let resource = json!({
        "a": "x", "empty": "", "nothing": null, "none": [], "nulls": [null, ""],
        "zero": 0, "no": false, "obj": {"k": ""}, "full": {"k": "v"}, "list": [{"value": ""}, {"value": "v"}]
    });
    for (attr, present) in [
        ("a", true),
        ("empty", false),
        ("nothing", false),
        ("none", false),
        ("nulls", false),
        ("missing", false),
        ("zero", true),
        ("no", true),
        ("obj", false),
        ("full", true),
        ("list", true),
        ("list.value", true),
        ("obj.k", false),
    ] {
        assert_eq!(matches(&format!("{attr} pr"), &resource), present, "{attr} pr");
        assert_eq!(
            matches(&format!("{attr} ne null"), &resource),
            present,
            "{attr} ne null"
        );
        assert_eq!(
            matches(&format!("{attr} eq null"), &resource),
            !present,
            "{attr} eq null"
        );
    }
}

#[test]
fn presence_of_deeply_nested_client_json_is_bounded() {
    let mut deep = json!("leaf");
    for _ in 0..10_000 {
        deep = Value::Array(vec![deep]);
    }
    let resource = Value::Object([("x".to_string(), deep)].into_iter().collect());
    assert!(matches("x pr", &resource));
    assert!(matches("x ne null", &resource));
    // serde_json's own Drop of such a value is recursive; forget it in the test.
    std::mem::forget(resource);
}

#[test]
fn multi_valued_attributes_match_on_any_value() {
    let user = bjensen();
    assert!(
        matches(r#"emails co "jensen.org""#, &user),
        "a complex value compares through `value`"
    );
    assert!(matches(r#"emails.type eq "home""#, &user));
    assert!(matches(r#"emails[type eq "home" and value ew ".org"]"#, &user));
    // The value filter applies to one element: no email is both work and .org.
    assert!(!matches(r#"emails[type eq "work" and value ew ".org"]"#, &user));
    assert!(matches(r#"emails.type eq "work" and emails.value ew ".org""#, &user));
    assert!(matches(r#"emails[primary eq true]"#, &user));
    assert!(
        matches(r#"emails[not (primary eq true)]"#, &user),
        "the home address has no primary"
    );
    // `ne` under the any-value rule, and on absent attributes.
    assert!(matches(r#"emails.type ne "work""#, &user));
    assert!(!matches(r#"userName ne "BJensen""#, &user));
    assert!(
        matches(r#"nickName ne "x""#, &user),
        "an absent attribute equals nothing"
    );
    assert!(matches(
        r#"emails[value eq "babs@jensen.org"]"#,
        &json!({"emails": {"value": "babs@jensen.org"}})
    ));
}

#[test]
fn ordering_of_strings_numbers_and_dates() {
    let user = bjensen();
    assert!(
        matches(r#"userName gt "a" and userName lt "C""#, &user),
        "case folded before ordering"
    );
    assert!(matches(r#"userName ge "bjensen" and userName le "bjensen""#, &user));
    assert!(!matches(r#"meta.created lt "2010-01-23T05:56:22+01:00""#, &user));
    assert!(
        matches(r#"meta.created eq "2010-01-23T05:56:22+01:00""#, &user),
        "same instant, other offset"
    );
    assert!(matches(r#"meta.created lt "2010-01-23T04:56:22.001Z""#, &user));
    assert!(
        matches(r#"meta.lastModified sw "2011-05""#, &user),
        "substring operators read the text"
    );
    let numbers = json!({"n": 10, "f": 2.5, "big": 18446744073709551615u64, "list": [1, 5]});
    assert!(matches(
        "n gt 9 and n lt 10.5 and n eq 10.0 and n ge 10 and n le 10",
        &numbers
    ));
    assert!(matches("f gt 2 and f lt 3 and f eq 2.5 and f ne 2", &numbers));
    assert!(matches(
        "big gt 9223372036854775807 and big eq 18446744073709551615",
        &numbers
    ));
    assert!(matches("list gt 4 and list lt 2 and not (list gt 5)", &numbers));
}

#[test]
fn booleans_and_type_mismatches() {
    let user = bjensen();
    assert!(matches("active eq true", &user));
    assert!(matches("active ne false", &user));
    assert!(!matches("active eq false", &user));
    // Entra ID's legacy PATCH bodies hold strings like "True". Stored that way
    // under an attribute the schema does not know, they are not booleans:
    let legacy = json!({"custom": "True", "count": "5"});
    assert!(!matches("custom eq true", &legacy));
    assert!(matches("custom ne true", &legacy));
    assert!(matches(r#"custom eq "true""#, &legacy));
    assert!(!matches("count eq 5", &legacy));
    // A boolean the schema knows is never compared with a string: refused.
    assert!(matches!(refused(r#"active eq "true""#), FilterError::InvalidComparison { attr, .. } if attr == "active"));
}

#[test]
fn invalid_comparisons_are_refused_before_evaluation() {
    for filter in [
        "active gt true",
        "active le false",
        r#"active eq "True""#,
        "userName co 5",
        "userName gt null",
        "userName eq 5",
        "userName eq true",
        r#"meta.lastModified gt "yesterday""#,
        r#"meta.lastModified eq "2011-05-13""#,
        r#"name eq "Barbara""#,
        r#"password sw "a""#,
        "password pr",
        r#"emails[primary eq "true"]"#,
        r#"x509Certificates.value gt "M""#,
        r#"userName[value eq "x"]"#,
        r#"nickName eq "x" or active gt true"#,
    ] {
        let e = refused(filter);
        assert!(matches!(e, FilterError::InvalidComparison { .. }), "{filter}: {e:?}");
        assert_eq!(e.scim_type(), "invalidFilter");
        assert_eq!(e.position(), None);
    }
    let e = refused(r#"meta.lastModified gt "yesterday""#);
    assert_eq!(
        e.to_string(),
        r#"cannot evaluate `meta.lastModified`: `yesterday` is not a dateTime such as "2011-05-13T04:42:34Z""#
    );
    // Refused even when no resource would reach the bad comparison.
    assert!(parse(r#"userName eq "nobody" and active gt true"#)
        .validate(&CoreSchema)
        .is_err());
    assert!(parse(r#"userName eq "x""#).validate(&CoreSchema).is_ok());
}

/// A schema of the caller's own: one case-exact custom attribute, a
/// dateTime, a number, and the core schema for everything else.
struct Custom;

impl Schema for Custom {
    fn attribute(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<AttrInfo> {
        match (name, sub) {
            ("code", None) => Some(AttrInfo::new(AttrType::String, false, true)),
            ("seen", None) => Some(AttrInfo::new(AttrType::DateTime, false, false)),
            ("level", None) => Some(AttrInfo::new(AttrType::Integer, false, false)),
            _ => CoreSchema.attribute(uri, name, sub),
        }
    }

    fn is_core(&self, uri: &str) -> bool {
        CoreSchema.is_core(uri)
    }
}

#[test]
fn caller_supplied_schema() {
    let resource = json!({"code": "AbC", "seen": "2024-01-01T00:00:00Z", "level": 3, "userName": "X"});
    let check = |f: &str| parse(f).matches(&resource, &Custom);
    assert_eq!(check(r#"code eq "abc""#), Ok(false));
    assert_eq!(check(r#"code eq "AbC""#), Ok(true));
    assert_eq!(check(r#"seen gt "2023-12-31T23:59:59-01:00""#), Ok(false));
    assert_eq!(check(r#"seen gt "2023-12-31T23:59:59+01:00""#), Ok(true));
    assert_eq!(check("level ge 3"), Ok(true));
    assert!(matches!(
        check(r#"level eq "3""#),
        Err(FilterError::InvalidComparison { .. })
    ));
    assert!(matches!(
        check("level co 3"),
        Err(FilterError::InvalidComparison { .. })
    ));
    assert_eq!(check(r#"userName eq "x""#), Ok(true));
}

#[test]
fn lookup_for_patch_code() {
    let user = bjensen();
    let at = |text: &str| lookup(&user, &crate::scim::PatchPath::parse(text).unwrap().attr, &CoreSchema).cloned();
    assert_eq!(at("USERNAME"), Some(json!("bjensen")));
    assert_eq!(at("name.givenName"), Some(json!("Barbara")));
    assert_eq!(
        at(&format!("{ENTERPRISE_USER_URN}:manager.displayName")),
        Some(json!("John Smith"))
    );
    assert_eq!(
        at(ENTERPRISE_USER_URN).and_then(|v| v.get("costCenter").cloned()),
        Some(json!("4130"))
    );
    assert_eq!(
        at("emails.value"),
        None,
        "a sub-attribute of a multi-valued attribute is not one value"
    );
    assert_eq!(at("nickName"), None);
    let exact = json!({"userName": "a", "username": "b"});
    assert_eq!(
        lookup(&exact, &AttrPath::new("username"), &CoreSchema),
        Some(&json!("b")),
        "exact case wins"
    );
}
