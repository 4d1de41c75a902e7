//! Claim paths and the header list encoding: no panic, and any list of names
//! survives encode/decode on one ASCII line.
//! The body is `doorward::fuzz_targets::claims`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::claims(data));
