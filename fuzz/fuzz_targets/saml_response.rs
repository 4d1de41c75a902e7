//! The SAML Response intake at the ACS: never panics, and fuzzed bytes are
//! never accepted as a login (they cannot carry the IdP's signature).
//! The body is `doorward::fuzz_targets::saml_response`, shared with the
//! stable property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::saml_response(data));
