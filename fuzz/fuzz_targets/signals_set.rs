//! Security Event Tokens from a shared-signals transmitter: raw bytes and
//! signed SETs with fuzzed payloads and headers never panic, and every
//! refusal carries an RFC 8935 error code.
//! The body is `doorward::fuzz_targets::signals_set`, shared with the
//! stable property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::signals_set(data));
