//! Cookie plumbing: finding doorward's cookies in a request, keeping them
//! from the upstream, and writing `Set-Cookie` values with the right
//! attributes.
//!
//! Parsing is byte-level on purpose: a `Cookie` header is not always UTF-8,
//! and a stray non-UTF-8 cookie elsewhere in the header must neither hide
//! the session nor stop doorward from stripping its own cookie before the
//! upstream sees it.

use bytes::BytesMut;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Browsers send at most ~4 KiB per cookie; anything bigger is not ours.
const MAX_COOKIE_VALUE: usize = 4096;

/// Every `name=value` pair of every `Cookie` header, as bytes, trimmed of
/// the optional whitespace around them.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
        })
}

/// The value of cookie `name` in the request, if present, UTF-8 and
/// sane-sized. With duplicates (a cookie-tossing attempt), the first one is
/// used, as browsers send the most specific path first.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    pairs(headers)
        .find(|(key, _)| *key == name.as_bytes())
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Whether a cookie name is one of doorward's: the session cookie `name`
/// or a pending login `{name}-login-*`.
fn is_ours(key: &[u8], name: &str) -> bool {
    key == name.as_bytes() || (key.starts_with(name.as_bytes()) && key[name.len()..].starts_with(b"-login-"))
}

/// Prepares the `Cookie` header for the upstream: doorward's own cookies
/// are removed (the upstream must never hold a credential it could replay
/// against doorward), and several `Cookie` headers (HTTP/2 sends one per
/// cookie, RFC 9113 §8.2.3) become the single line HTTP/1.1 expects.
pub fn strip_own(headers: &mut HeaderMap, name: &str) {
    let count = headers.get_all(COOKIE).iter().count();
    if count == 0 {
        return;
    }
    if count == 1 && !pairs(headers).any(|(key, _)| is_ours(key, name)) {
        return;
    }
    let mut joined = BytesMut::new();
    for value in headers.get_all(COOKIE) {
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let key = pair
                .iter()
                .position(|b| *b == b'=')
                .map_or(pair, |eq| pair[..eq].trim_ascii());
            if is_ours(key, name) {
                continue;
            }
            if !joined.is_empty() {
                joined.extend_from_slice(b"; ");
            }
            joined.extend_from_slice(pair);
        }
    }
    headers.remove(COOKIE);
    if !joined.is_empty() {
        // The bytes came from valid header values joined by "; ", so they
        // are a valid header value too.
        if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
            headers.insert(COOKIE, value);
        }
    }
}

/// Removes `Set-Cookie` headers of the upstream's response that would set
/// one of doorward's cookies (an app must not be able to plant or clear a
/// session).
pub fn strip_own_set_cookie(headers: &mut HeaderMap, name: &str) {
    let ours = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        let end = bytes
            .iter()
            .position(|b| *b == b'=' || *b == b';')
            .unwrap_or(bytes.len());
        is_ours(bytes[..end].trim_ascii(), name)
    };
    if !headers.get_all(SET_COOKIE).iter().any(ours) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !ours(v))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for value in kept {
        headers.append(SET_COOKIE, value);
    }
}

/// Attributes every doorward cookie carries.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    pub domain: Option<String>,
}

impl CookieSettings {
    /// `Set-Cookie` for `name=value` living `max_age` seconds (0 deletes).
    pub fn set_cookie(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let mut text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax");
        if self.secure {
            text.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            text.push_str("; Domain=");
            text.push_str(domain);
        }
        HeaderValue::from_str(&text).ok()
    }

    /// A cookie a cross-site POST carries back (`SameSite=None`, which
    /// browsers only accept with `Secure`; they honour `Secure` cookies on
    /// http://localhost too). For the SAML pending login only: it is
    /// short-lived and bound to the login's key.
    pub fn set_cross_site_cookie(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let mut text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=None; Secure");
        if let Some(domain) = &self.domain {
            text.push_str("; Domain=");
            text.push_str(domain);
        }
        HeaderValue::from_str(&text).ok()
    }

    pub fn clear_cookie(&self, name: &str) -> Option<HeaderValue> {
        self.set_cookie(name, "", 0)
    }
}

/// The cookie name actually used: `__Host-` is added when its rules allow
/// (Secure, no Domain, Path=/), so the cookie cannot be set by a sibling
/// subdomain.
pub fn effective_name(base: &str, settings: &CookieSettings) -> String {
    let bare = base.trim_start_matches("__Host-").trim_start_matches("__Secure-");
    if settings.secure && settings.domain.is_none() {
        format!("__Host-{bare}")
    } else if settings.secure {
        format!("__Secure-{bare}")
    } else {
        bare.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).expect("value"));
        }
        h
    }

    #[test]
    fn finds_the_named_cookie_among_others() {
        let h = with_cookies(&[b"a=1; doorward=abc; b=2", b"doorward=second"]);
        assert_eq!(find(&h, "doorward"), Some("abc"));
        assert_eq!(find(&h, "door"), None);
        let big = format!("doorward={}", "x".repeat(5000));
        let h = with_cookies(&[big.as_bytes()]);
        assert_eq!(find(&h, "doorward"), None, "oversized cookies are ignored");
    }

    #[test]
    fn a_non_utf8_cookie_hides_nothing_and_is_still_stripped_around() {
        let h = with_cookies(&[b"junk=\xff\xfe; doorward=abc; b=\xc3"]);
        assert_eq!(find(&h, "doorward"), Some("abc"), "the session is still found");
        let mut h = h;
        strip_own(&mut h, "doorward");
        assert_eq!(h.get(COOKIE).map(|v| v.as_bytes()), Some(&b"junk=\xff\xfe; b=\xc3"[..]));
    }

    #[test]
    fn own_cookies_never_reach_the_upstream_and_crumbs_are_joined() {
        let mut h = with_cookies(&[
            b"a=1; doorward=secret; doorward-login-abc=x; b=2",
            b"doorward=again",
            b"c=3",
        ]);
        strip_own(&mut h, "doorward");
        let left: Vec<_> = h.get_all(COOKIE).iter().collect();
        assert_eq!(left, [HeaderValue::from_static("a=1; b=2; c=3")]);
        let mut h = with_cookies(&[b"doorwardx=1"]);
        strip_own(&mut h, "doorward");
        assert_eq!(h.get(COOKIE), Some(&HeaderValue::from_static("doorwardx=1")));
        let mut h = with_cookies(&[b"doorward=only"]);
        strip_own(&mut h, "doorward");
        assert!(h.get(COOKIE).is_none());
        let mut h = with_cookies(&[b"x=1", b"y=2"]);
        strip_own(&mut h, "doorward");
        assert_eq!(h.get_all(COOKIE).iter().count(), 1, "h2 crumbs become one line");
    }

    #[test]
    fn upstream_set_cookie_for_our_names_is_dropped() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("doorward=planted; Path=/"));
        h.append(SET_COOKIE, HeaderValue::from_static("doorward-login-12345678=x"));
        h.append(SET_COOKIE, HeaderValue::from_static("app=1; Path=/"));
        strip_own_set_cookie(&mut h, "doorward");
        let left: Vec<_> = h.get_all(SET_COOKIE).iter().collect();
        assert_eq!(left, [HeaderValue::from_static("app=1; Path=/")]);
    }

    #[test]
    fn host_prefix_only_when_allowed() {
        let secure = CookieSettings {
            secure: true,
            domain: None,
        };
        assert_eq!(effective_name("doorward", &secure), "__Host-doorward");
        let plain = CookieSettings {
            secure: false,
            domain: None,
        };
        assert_eq!(effective_name("__Host-doorward", &plain), "doorward");
        let domain = CookieSettings {
            secure: true,
            domain: Some("example.com".into()),
        };
        assert_eq!(effective_name("doorward", &domain), "__Secure-doorward");
        let set = secure.set_cookie("__Host-doorward", "v", 60).expect("header");
        assert_eq!(
            set,
            "__Host-doorward=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
