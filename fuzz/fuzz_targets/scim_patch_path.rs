//! SCIM PATCH paths (`"path": "emails[type eq \"work\"].value"`, attacker
//! bytes): no panic, no deep recursion; whatever parses prints back to the
//! same path, and selecting the elements it names never panics.
#![no_main]
use doorward::scim::{CoreSchema, PatchPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(path) = PatchPath::parse(text) else { return };
    let printed = path.to_string();
    assert_eq!(PatchPath::parse(&printed).as_ref(), Ok(&path), "printed as {printed:?}");
    let resource = serde_json::json!({
        "emails": [{"value": "b@example.com", "type": "work"}, "loose", null],
        "members": [{"value": "2819c223", "display": "Babs"}],
        "name": {"givenName": "Barbara"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}
    });
    let _ = path.matching_indexes(&resource, &CoreSchema);
    let _ = doorward::scim::lookup(&resource, &path.attr, &CoreSchema);
});
