//! How the SCIM server answers: every body is `application/scim+json`
//! (RFC 7644 §3.1), and single resources carry their version as an `ETag`
//! (§3.14) so an IdP can send it back in `If-Match`.

use http::header::{HeaderValue, ETAG, LOCATION};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::respond::{full, Reply, ResponseBody};

pub const CONTENT_TYPE_SCIM: &str = "application/scim+json";

/// A JSON body as `application/scim+json`, uncacheable.
pub fn json(status: StatusCode, body: &Value) -> Reply {
    full(status, body.to_string(), CONTENT_TYPE_SCIM)
}

/// The weak entity tag of a version: `W/"<version>"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// One resource, with its `ETag` (and `Location` when created).
pub fn resource(status: StatusCode, body: &Value, version: i64, location: Option<&str>) -> Reply {
    let mut response = json(status, body);
    set_etag(response.headers_mut(), version);
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// `204 No Content` (DELETE, and group PATCH), with the new `ETag` if any.
pub fn no_content(version: Option<i64>) -> Reply {
    let mut response = crate::respond::no_store(http::Response::new(ResponseBody::empty()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Some(version) = version {
        set_etag(response.headers_mut(), version);
    }
    response
}

/// `304 Not Modified` for a GET whose `If-None-Match` names the version.
pub fn not_modified(version: i64) -> Reply {
    let mut response = no_content(Some(version));
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response
}

fn set_etag(headers: &mut HeaderMap, version: i64) {
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        headers.insert(ETAG, value);
    }
}

/// Whether an `If-Match` / `If-None-Match` header names `version`: `*`, or
/// a list of entity tags compared weakly (RFC 9110 §8.8.3.2), since SCIM
/// versions are weak. `None` when the header is absent.
pub fn names_version(headers: &HeaderMap, name: http::HeaderName, version: i64) -> Option<bool> {
    let values: Vec<&HeaderValue> = headers.get_all(&name).iter().collect();
    if values.is_empty() {
        return None;
    }
    let wanted = version.to_string();
    let named = values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag.trim_matches('"') == wanted
        });
    Some(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::IF_MATCH;

    #[test]
    fn if_match_compares_weakly_and_accepts_lists_and_star() {
        let mut h = HeaderMap::new();
        assert_eq!(names_version(&h, IF_MATCH, 3), None);
        h.insert(IF_MATCH, HeaderValue::from_static("W/\"3\""));
        assert_eq!(names_version(&h, IF_MATCH, 3), Some(true));
        assert_eq!(names_version(&h, IF_MATCH, 4), Some(false));
        h.insert(IF_MATCH, HeaderValue::from_static("\"1\", W/\"4\""));
        assert_eq!(names_version(&h, IF_MATCH, 4), Some(true));
        h.insert(IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(names_version(&h, IF_MATCH, 9), Some(true));
    }
}
