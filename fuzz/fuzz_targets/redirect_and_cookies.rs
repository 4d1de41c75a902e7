//! Return-to validation and cookie parsing: an accepted target is never
//! protocol-relative, multi-line or foreign; doorward's cookie never survives
//! stripping.
//! The body is `doorward::fuzz_targets::redirect_and_cookies`, shared with the stable
//! property test of the same name.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| doorward::fuzz_targets::redirect_and_cookies(data));
