//! Claim paths and the header list encoding: no panic, and any list of
//! names survives encode/decode on one ASCII line.
#![no_main]
use doorward::identity::claim_path::ClaimPath;
use doorward::identity::header_list;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let claims = serde_json::json!({"a": {"b": ["x", 1, null]}, "https://x.test/g": "y", "groups": "p,q"});
    if let (Ok(path), Some(claims)) = (ClaimPath::parse(text), claims.as_object()) {
        let _ = path.strings(claims, Some(","));
    }
    let items: Vec<String> = text.split('\u{0}').map(str::to_string).collect();
    let encoded = header_list::encode(&items);
    assert!(encoded.is_ascii() && !encoded.contains(['\r', '\n', ' ']), "{encoded:?}");
    assert!(http::HeaderValue::from_str(&encoded).is_ok());
    if !(items.len() == 1 && items[0].is_empty()) {
        assert_eq!(header_list::decode(&encoded), items);
    }
});
