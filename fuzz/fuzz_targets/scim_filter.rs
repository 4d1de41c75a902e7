//! SCIM filters (`GET /Users?filter=...`, attacker bytes): no panic, no
//! deep recursion; whatever parses prints back to the same filter, and
//! evaluating it against resources of every shape never panics.
#![no_main]
use doorward::scim::{CoreSchema, Filter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let printed = filter.to_string();
    assert_eq!(Filter::parse(&printed).as_ref(), Ok(&filter), "printed as {printed:?}");
    let resources = [
        serde_json::json!({
            "userName": "bjensen", "active": true, "title": "",
            "name": {"givenName": "Barbara", "familyName": "O'Malley"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}, "loose", null],
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3\""},
            "members": [{"value": "2819c223"}], "x": [1, "1", true, {"value": null}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}}
        }),
        serde_json::json!("not an object"),
    ];
    for resource in &resources {
        let _ = filter.matches(resource, &CoreSchema);
    }
});
