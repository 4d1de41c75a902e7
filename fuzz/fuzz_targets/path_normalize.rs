//! Path normalisation: never panics; what it returns is in normal form and a
//! fixed point.
//! The body is `doorward::fuzz_targets::path_normalize`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::path_normalize(data));
