//! Request ids: kept from an incoming `X-Request-Id` when it is sane,
//! otherwise made here, and forwarded upstream and back to the client.

use http::{HeaderMap, HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id for this request. An incoming id is kept only if it is short and
/// plain (it lands in logs and pages); anything else is replaced.
pub fn take_or_make(headers: &HeaderMap) -> HeaderValue {
    if let Some(value) = headers.get(&HEADER) {
        let bytes = value.as_bytes();
        if (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='))
        {
            return value.clone();
        }
    }
    make()
}

fn make() -> HeaderValue {
    let id: u128 = rand::random();
    let text = format!("{id:032x}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(take_or_make(&h), "abc-123");
        h.insert(HEADER, HeaderValue::from_static("<script>"));
        let made = take_or_make(&h);
        assert_eq!(made.len(), 32);
        assert_ne!(take_or_make(&HeaderMap::new()), made);
    }
}
