//! SCIM PATCH paths (attacker bytes): never panics; what parses prints
//! back to itself.
//! The body is `doorward::fuzz_targets::scim_patch_path`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::scim_patch_path(data));
