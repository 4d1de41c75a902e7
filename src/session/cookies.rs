//! Cookie plumbing: finding doorward's cookies in a request and writing
//! `Set-Cookie` values with the right attributes.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// Browsers send at most ~4 KiB per cookie; anything bigger is not ours.
const MAX_COOKIE_VALUE: usize = 4096;

/// The value of cookie `name` in the request, if present and sane-sized.
/// With duplicates (a cookie-tossing attempt), the first one is used, as
/// browsers send the most specific path first.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
}

/// Removes doorward's own cookies (the session cookie `name` and the
/// `{name}-login-*` ones) from the `Cookie` headers, so the upstream never
/// holds a credential it could replay against doorward.
pub fn strip_own(headers: &mut HeaderMap, name: &str) {
    let login_prefix = format!("{name}-login-");
    let is_ours = |pair: &str| {
        let key = pair.trim().split('=').next().unwrap_or("");
        key == name || key.starts_with(&login_prefix)
    };
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if !values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(&is_ours))
    {
        return;
    }
    headers.remove(COOKIE);
    for value in values {
        let Ok(text) = value.to_str() else {
            headers.append(COOKIE, value);
            continue;
        };
        let kept: Vec<&str> = text.split(';').map(str::trim).filter(|pair| !is_ours(pair)).collect();
        if !kept.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
                headers.append(COOKIE, value);
            }
        }
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

    #[test]
    fn finds_the_named_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; doorward=abc; b=2"));
        h.append(COOKIE, HeaderValue::from_static("doorward=second"));
        assert_eq!(find(&h, "doorward"), Some("abc"));
        assert_eq!(find(&h, "door"), None);
        let mut h = HeaderMap::new();
        let big = format!("doorward={}", "x".repeat(5000));
        h.append(COOKIE, HeaderValue::from_str(&big).expect("value"));
        assert_eq!(find(&h, "doorward"), None, "oversized cookies are ignored");
    }

    #[test]
    fn own_cookies_never_reach_the_upstream() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; doorward=secret; doorward-login-abc=x; b=2"),
        );
        h.append(COOKIE, HeaderValue::from_static("doorward=again"));
        strip_own(&mut h, "doorward");
        let left: Vec<_> = h.get_all(COOKIE).iter().collect();
        assert_eq!(left, [HeaderValue::from_static("a=1; b=2")]);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("doorwardx=1"));
        strip_own(&mut h, "doorward");
        assert_eq!(h.get(COOKIE), Some(&HeaderValue::from_static("doorwardx=1")));
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
