//! Identity-header stripping with arbitrary header maps: no name folding to
//! an identity header survives, nothing else is touched.
//! The body is `doorward::fuzz_targets::identity_strip`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::identity_strip(data));
