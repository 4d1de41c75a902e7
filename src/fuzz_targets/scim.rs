//! SCIM filters (`GET /Users?filter=...`) and PATCH paths
//! (`"path": "emails[type eq \"work\"].value"`): attacker bytes from the
//! IdP side of the SCIM listener. No panic and no deep recursion; whatever
//! parses prints back to the same expression (so what is logged or echoed
//! in an error is what was understood), and evaluating it against
//! resources of every shape never panics.

use serde_json::{json, Value};

use crate::scim::{lookup, CoreSchema, Filter, PatchPath};

/// Resources of awkward shapes: loose strings and nulls inside
/// multi-valued attributes, an extension, a value that is no object.
fn resources() -> [Value; 2] {
    [
        json!({
            "userName": "bjensen", "active": true, "title": "",
            "name": {"givenName": "Barbara", "familyName": "O'Malley"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}, "loose", null],
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3\""},
            "members": [{"value": "2819c223", "display": "Babs"}], "x": [1, "1", true, {"value": null}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "7", "manager": {"value": "m"}
            }
        }),
        json!("not an object"),
    ]
}

/// A filter parses to an expression that prints back to itself, and
/// matching it never panics.
pub fn scim_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let printed = filter.to_string();
    assert_eq!(Filter::parse(&printed).as_ref(), Ok(&filter), "printed as {printed:?}");
    for resource in &resources() {
        let _ = filter.matches(resource, &CoreSchema);
    }
}

/// A PATCH path parses to a path that prints back to itself, and selecting
/// what it names never panics.
pub fn scim_patch_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(path) = PatchPath::parse(text) else { return };
    let printed = path.to_string();
    assert_eq!(PatchPath::parse(&printed).as_ref(), Ok(&path), "printed as {printed:?}");
    for resource in &resources() {
        let _ = path.matching_indexes(resource, &CoreSchema);
        let _ = lookup(resource, &path.attr, &CoreSchema);
    }
}
