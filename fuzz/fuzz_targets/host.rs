//! The Host parser: never panics; what it accepts is canonical and a fixed
//! point; Host and an absolute-form authority are read alike and must agree.
//! The body is `doorward::fuzz_targets::host`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::host(data));
