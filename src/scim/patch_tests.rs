//! PATCH application: each operation with and without a path, value
//! filters, the Entra ID and Okta dialects, group members, and the exact
//! `scimType` of every refusal.

use serde_json::{json, Map, Value};

use super::*;
use crate::directory::DOORWARD_USER_SCHEMA;
use crate::scim::resource::{normalise, Source};
use crate::scim::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};
use crate::store::directory::MemberChange;

fn stored(kind: Kind, body: Value) -> Map<String, Value> {
    normalise(kind, &body, Source::Body).expect("a valid resource")
}

fn bjensen() -> Map<String, Value> {
    stored(
        Kind::User,
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "userName": "bjensen", "externalId": "e1", "active": true, "title": "Guide",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "b@work.test", "type": "work", "primary": true},
                {"value": "b@home.test", "type": "home"}
            ],
            ENTERPRISE_USER_URN: {"employeeNumber": "701984", "department": "Tours"},
        }),
    )
}

fn request(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": ops})
}

/// The user after `ops`, normalised as it would be stored.
fn user_after(ops: Value) -> Result<Value, ScimError> {
    let ops = parse_request(&request(ops))?;
    let mut doc = bjensen();
    apply(Kind::User, "u1", &mut doc, &ops, None)?;
    normalise(Kind::User, &Value::Object(doc), Source::Patched).map(Value::Object)
}

fn user(ops: Value) -> Value {
    user_after(ops.clone()).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

fn refusal(ops: Value) -> &'static str {
    match user_after(ops.clone()) {
        Ok(out) => panic!("{ops} was accepted: {out}"),
        Err(e) => e.scim_type().unwrap_or("none"),
    }
}

fn group_after(ops: Value, current: &[(&str, &str)]) -> Result<(Value, MemberChange), ScimError> {
    let ops = parse_request(&request(ops))?;
    let mut doc = stored(
        Kind::Group,
        json!({"schemas": [GROUP_URN], "displayName": "Eng", "externalId": "g-ext"}),
    );
    let current = current.iter().map(|(i, n)| (i.to_string(), n.to_string())).collect();
    let mut plan = MemberPlan::new(needs_members(&ops).then_some(current));
    apply(Kind::Group, "g1", &mut doc, &ops, Some(&mut plan))?;
    let doc = normalise(Kind::Group, &Value::Object(doc), Source::Patched)?;
    Ok((Value::Object(doc), plan.into_change()))
}

fn edit(add: &[&str], remove: &[&str]) -> MemberChange {
    MemberChange::Edit {
        add: add.iter().map(|s| s.to_string()).collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn add_sets_simple_values_merges_complex_ones_and_appends_to_lists() {
    let out = user(json!([
        {"op": "add", "path": "nickName", "value": "Babs"},
        {"op": "add", "path": "name", "value": {"middleName": "J"}},
        {"op": "add", "path": "emails", "value": [{"value": "b@other.test", "type": "other"}]},
        {"op": "add", "path": "emails", "value": [{"value": "b@home.test", "type": "home"}]},
    ]));
    assert_eq!(out["nickName"], "Babs");
    assert_eq!(
        out["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"})
    );
    assert_eq!(
        out["emails"].as_array().map(Vec::len),
        Some(3),
        "a value already there is not added twice"
    );
}

#[test]
fn add_without_path_takes_an_object_of_attributes() {
    let out = user(
        json!([{"op": "add", "value": {"nickName": "Babs", "emails": [{"value": "x@y.test"}],
                                                 ENTERPRISE_USER_URN: {"costCenter": "4130"}}}]),
    );
    assert_eq!(out["nickName"], "Babs");
    assert_eq!(out["emails"].as_array().map(Vec::len), Some(3));
    assert_eq!(out[ENTERPRISE_USER_URN]["costCenter"], "4130");
    assert_eq!(
        out[ENTERPRISE_USER_URN]["employeeNumber"], "701984",
        "merged, not replaced"
    );
}

#[test]
fn a_new_primary_value_demotes_the_old_one() {
    let out = user(json!([{"op": "add", "path": "emails", "value": [{"value": "new@x.test", "primary": true}]}]));
    let primaries: Vec<&Value> = out["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["primary"] == true)
        .collect();
    assert_eq!(primaries, [&json!({"value": "new@x.test", "primary": true})]);
}

#[test]
fn replace_sets_lists_whole_and_merges_complex_values() {
    let out = user(json!([
        {"op": "replace", "path": "emails", "value": [{"value": "only@x.test", "type": "work"}]},
        {"op": "replace", "path": "name", "value": {"familyName": "Smith"}},
        {"op": "replace", "path": "name.givenName", "value": "Babs"},
        {"op": "replace", "path": "title", "value": null},
    ]));
    assert_eq!(out["emails"], json!([{"value": "only@x.test", "type": "work"}]));
    assert_eq!(out["name"], json!({"givenName": "Babs", "familyName": "Smith"}));
    assert!(out.get("title").is_none(), "replace with null unassigns");
}

#[test]
fn value_filters_select_elements_and_their_sub_attributes() {
    let out = user(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.test"}]));
    assert_eq!(
        out["emails"][0],
        json!({"value": "new@work.test", "type": "work", "primary": true})
    );
    assert_eq!(out["emails"][1]["value"], "b@home.test");
    let out = user(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(out["emails"].as_array().map(Vec::len), Some(1));
    let out = user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert!(out["emails"][0].get("primary").is_none());
    let out = user(json!([{"op": "replace", "path": "emails[value ew \"home.test\"]",
                          "value": {"value": "h@home.test", "type": "home"}}]));
    assert_eq!(out["emails"][1], json!({"value": "h@home.test", "type": "home"}));
}

#[test]
fn entra_replace_through_a_filter_that_matches_nothing_makes_the_element() {
    let out = user(json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}]));
    assert_eq!(out["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555"}]));
    let out = user(json!([{"op": "Add", "path": "emails[type eq \"other\"].Value", "value": "o@x.test"}]));
    assert_eq!(out["emails"][2], json!({"type": "other", "value": "o@x.test"}));
    assert_eq!(
        refusal(json!([{"op": "replace", "path": "emails[type sw \"o\"].value", "value": "x"}])),
        "noTarget",
        "only a filter of `eq`s says what to make"
    );
}

#[test]
fn entra_capitalised_ops_string_booleans_and_path_like_keys() {
    let out = user(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}},
        {"op": "Add", "path": "emails[type eq \"work\"].primary", "value": "True"},
    ]));
    assert_eq!(out["active"], false);
    assert_eq!(out["displayName"], "Bjfe");
    assert_eq!(out["name"], json!({"givenName": "Kkom", "familyName": "Unua"}));
    assert_eq!(out[ENTERPRISE_USER_URN]["employeeNumber"], "Aklq");
    assert_eq!(out["emails"][0]["primary"], true);
    assert_eq!(
        user(json!([{"op": "replace", "path": "active", "value": "true"}]))["active"],
        true
    );
    assert_eq!(
        refusal(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
        "invalidValue"
    );
}

#[test]
fn entra_manager_without_its_urn_and_as_a_one_element_list() {
    let out = user(json!([{"op": "Add", "path": "manager",
                          "value": [{"$ref": "https://x/Users/m1", "value": "m1"}]}]));
    assert_eq!(
        out[ENTERPRISE_USER_URN]["manager"],
        json!({"$ref": "https://x/Users/m1", "value": "m1"})
    );
    let out = user(json!([{"op": "replace",
                          "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"}]));
    assert_eq!(out[ENTERPRISE_USER_URN]["manager"], json!({"value": "m2"}));
}

#[test]
fn okta_deactivates_with_a_path_less_replace() {
    let out = user(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(out["active"], false);
    assert_eq!(out["userName"], "bjensen");
}

#[test]
fn the_whole_extension_is_a_path_of_its_own() {
    let out = user(json!([{"op": "replace", "path": ENTERPRISE_USER_URN, "value": {"division": "North"}}]));
    assert_eq!(out[ENTERPRISE_USER_URN]["division"], "North");
    assert_eq!(out[ENTERPRISE_USER_URN]["department"], "Tours");
    let out = user(json!([{"op": "remove", "path": ENTERPRISE_USER_URN}]));
    assert!(out.get(ENTERPRISE_USER_URN).is_none());
    assert_eq!(
        out["schemas"],
        json!([USER_URN]),
        "schemas follow the extensions present"
    );
    let out = user(json!([{"op": "add", "path": DOORWARD_USER_SCHEMA, "value": {"roles": ["admin"]}}]));
    assert_eq!(out[DOORWARD_USER_SCHEMA]["roles"], json!([{"value": "admin"}]));
}

#[test]
fn remove_unassigns_and_is_idempotent() {
    let out = user(json!([
        {"op": "remove", "path": "title"},
        {"op": "remove", "path": "name.familyName"},
        {"op": "remove", "path": "nickName"},
        {"op": "remove", "path": "emails[type eq \"nowhere\"]"},
        {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
    ]));
    assert!(out.get("title").is_none());
    assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    assert_eq!(out["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(out[ENTERPRISE_USER_URN], json!({"employeeNumber": "701984"}));
    let out = user(json!([{"op": "remove", "path": "emails", "value": [{"value": "b@home.test"}]}]));
    assert_eq!(
        out["emails"].as_array().map(Vec::len),
        Some(1),
        "a value list removes those values"
    );
    let out = user(json!([{"op": "remove", "path": "emails"}]));
    assert!(out.get("emails").is_none());
}

#[test]
fn passwords_are_accepted_and_never_stored() {
    let out = user(json!([
        {"op": "replace", "path": "password", "value": "hunter2"},
        {"op": "add", "value": {"password": "hunter3"}},
    ]));
    assert!(!out.to_string().contains("hunter"), "{out}");
}

#[test]
fn refusals_carry_the_exact_scim_type() {
    let cases = [
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "favouriteColour", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "name.nickname", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "urn:x:unknown:2.0:User:tag", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails..value", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}]),
            "invalidFilter",
        ),
        (
            json!([{"op": "replace", "path": "emails[primary eq \"true\"].value", "value": "x"}]),
            "invalidFilter",
        ),
        (json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability"),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "value": {"id": "someone-else"}}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": 42}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": null}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "name", "value": [1, 2]}]),
            "invalidValue",
        ),
        (json!([{"op": "replace", "value": "not an object"}]), "invalidValue"),
        (json!([{"op": "move", "path": "title"}]), "invalidSyntax"),
        (json!([{"path": "title"}]), "invalidSyntax"),
        (json!({"op": "add"}), "invalidSyntax"),
    ];
    for (ops, scim_type) in cases {
        assert_eq!(refusal(ops.clone()), scim_type, "{ops}");
    }
    let no_schema = parse_request(&json!({"Operations": []})).expect_err("schemas");
    assert_eq!(no_schema.scim_type(), Some("invalidSyntax"));
}

#[test]
fn a_failing_operation_leaves_the_document_as_it_was_for_the_caller() {
    // The caller applies to a copy and stores only on success; here the
    // copy is left half-changed, and the error is what stops the write.
    let ops = parse_request(&request(json!([
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "id", "value": "x"},
    ])))
    .expect("parsed");
    let original = bjensen();
    let mut copy = original.clone();
    assert!(apply(Kind::User, "u1", &mut copy, &ops, None).is_err());
    assert_eq!(original["title"], "Guide");
}

#[test]
fn operations_and_schemas_may_come_in_any_order_and_case() {
    let body = json!({"Operations": [{"op": "REPLACE", "path": "title", "value": "Boss"}],
                      "schemas": [PATCH_OP_URN.to_uppercase()]});
    let ops = parse_request(&body).expect("accepted");
    assert_eq!(ops[0].op, Op::Replace);
}

#[test]
fn entra_member_add_and_remove_with_value_lists() {
    let (_, change) = group_after(
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2"}]}]),
        &[],
    )
    .expect("accepted");
    assert_eq!(change, edit(&["u1", "u2"], &[]));
    let (_, change) = group_after(
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]),
        &[],
    )
    .expect("accepted");
    assert_eq!(
        change,
        edit(&[], &["u1"]),
        "a remove with a value removes those members only"
    );
    let (_, change) =
        group_after(json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3\"]"}]), &[]).expect("accepted");
    assert_eq!(change, edit(&[], &["7f4bc1a3"]));
}

#[test]
fn okta_membership_and_rename_patches() {
    let (doc, change) = group_after(
        json!([
            {"op": "replace", "value": {"id": "g1", "displayName": "Test SCIMv2"}},
            {"op": "remove", "path": "members[value eq \"89bb1940\"]"},
            {"op": "add", "path": "members", "value": [{"value": "23a35c27", "display": "test.user@okta.local"}]},
        ]),
        &[],
    )
    .expect("accepted");
    assert_eq!(doc["displayName"], "Test SCIMv2");
    assert!(doc.get("members").is_none(), "members are rows, not JSON");
    assert_eq!(change, edit(&["23a35c27"], &["89bb1940"]));
    let (_, change) = group_after(
        json!([{"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}]),
        &[],
    )
    .expect("accepted");
    assert_eq!(change, MemberChange::Set(vec!["a".into(), "b".into()]));
    let (_, change) = group_after(json!([{"op": "remove", "path": "members"}]), &[]).expect("accepted");
    assert_eq!(change, MemberChange::Set(vec![]));
}

#[test]
fn member_filters_beyond_value_eq_use_the_current_members() {
    let (_, change) = group_after(
        json!([{"op": "remove", "path": "members[display sw \"al\"]"}]),
        &[("u1", "alice"), ("u2", "bob"), ("u3", "albert")],
    )
    .expect("accepted");
    assert_eq!(change, edit(&[], &["u1", "u3"]));
}

#[test]
fn member_refusals() {
    let refused = |ops: Value| group_after(ops, &[]).map(|_| ()).map_err(|e| e.scim_type());
    assert_eq!(
        refused(json!([{"op": "replace", "path": "members.value", "value": "x"}])),
        Err(Some("mutability"))
    );
    assert_eq!(
        refused(json!([{"op": "add", "path": "members[value eq \"a\"]", "value": [{"value": "b"}]}])),
        Err(Some("invalidPath"))
    );
    assert_eq!(
        refused(json!([{"op": "add", "path": "members", "value": [{"value": "g2", "type": "Group"}]}])),
        Err(Some("invalidValue"))
    );
    assert_eq!(
        refused(json!([{"op": "add", "path": "members", "value": [{"display": "nobody"}]}])),
        Err(Some("invalidValue"))
    );
    assert_eq!(
        refused(json!([{"op": "replace", "path": "displayName", "value": null}])),
        Err(Some("invalidValue"))
    );
    assert_eq!(
        refused(json!([{"op": "replace", "path": "userName", "value": "x"}])),
        Err(Some("invalidPath")),
        "groups have no userName"
    );
}
