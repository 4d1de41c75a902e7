//! Return-to validation and cookie parsing take attacker strings: no panic,
//! and an accepted target is never protocol-relative or multi-line.
#![no_main]
use doorward::auth::redirect::RedirectPolicy;
use doorward::session::cookies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = RedirectPolicy {
        own_host: "app.example.com".into(),
        allowed: vec![".example.org".into()],
    };
    if let Some(target) = policy.check(text) {
        assert!(!target.starts_with("//") && !target.contains('\\'), "{text:?} -> {target:?}");
        assert!(!target.chars().any(char::is_control), "{text:?} -> {target:?}");
        if !target.starts_with('/') {
            let url = url::Url::parse(&target).expect("absolute targets parse");
            let host = url.host_str().unwrap_or_default();
            assert!(host == "app.example.com" || host == "example.org" || host.ends_with(".example.org"), "{target}");
        }
    }
    if let Ok(value) = http::HeaderValue::from_str(text) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        let _ = cookies::find(&headers, "doorward");
        cookies::strip_own(&mut headers, "doorward");
        if let Some(left) = headers.get(http::header::COOKIE) {
            let left = left.to_str().unwrap_or_default();
            assert!(!left.split(';').any(|p| p.trim().starts_with("doorward=")), "{text:?} left {left:?}");
        }
    }
});
