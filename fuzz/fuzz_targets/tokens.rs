//! JWTs from the outside (bearer and logout tokens): decoding, signature
//! checking and the logout-token rules never panic.
//! The body is `doorward::fuzz_targets::tokens`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::tokens(data));
