//! Path normalisation must never panic, and what it returns must be in
//! normal form: absolute, no empty or dot segments, and a fixed point.
#![no_main]
use doorward::paths::{normalize, EscapedSlashes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for mode in [EscapedSlashes::Reject, EscapedSlashes::Decode] {
        if let Ok(normal) = normalize(raw, mode) {
            assert!(normal.starts_with('/'), "{raw:?} -> {normal:?}");
            assert!(!normal.contains("//"), "{raw:?} -> {normal:?}");
            for segment in normal.split('/') {
                assert!(segment != "." && segment != "..", "{raw:?} -> {normal:?}");
                assert!(!segment.contains(';'), "{raw:?} -> {normal:?}");
            }
            let again = normalize(&normal, mode).expect("normal form normalises");
            assert_eq!(again, normal, "not a fixed point for {raw:?}");
        }
    }
});
