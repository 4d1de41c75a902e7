//! The config loader takes whatever is in the file: errors, never panics.
//! The body is `doorward::fuzz_targets::config`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::config(data));
