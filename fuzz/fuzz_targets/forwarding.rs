//! X-Forwarded-* with arbitrary header bytes: never panics, never emits an
//! invalid header value, replaces an untrusted peer's claims and keeps every
//! hop a trusted proxy reported.
//! The body is `doorward::fuzz_targets::forwarding`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::forwarding(data));
