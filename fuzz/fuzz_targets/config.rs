//! The config loader takes whatever is in the file: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = doorward::config::parse_str(text, "fuzz.toml") {
        let _ = e.to_string();
    }
});
