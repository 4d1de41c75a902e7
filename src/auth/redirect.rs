//! Where a browser may be sent after login or logout. Only a path on
//! doorward's own site, or an absolute URL on an allowed host: every other
//! shape (protocol-relative, backslashes, `https:evil`, userinfo, control
//! characters, `javascript:`) is refused, and the caller falls back to `/`.

use percent_encoding::percent_decode_str;

/// Hosts a return-to URL may name.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    /// doorward's own host (from `public_url`), lower-case.
    pub own_host: String,
    /// `app.example.com` exact, `.example.com` for any subdomain.
    pub allowed: Vec<String>,
}

impl RedirectPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        host == self.own_host
            || self.allowed.iter().any(|rule| {
                let rule = rule.to_ascii_lowercase();
                match rule.strip_prefix('.') {
                    Some(parent) => host == parent || host.ends_with(&rule),
                    None => host == rule,
                }
            })
    }

    /// The target if it is safe, else None.
    pub fn check(&self, target: &str) -> Option<String> {
        if target.is_empty() || target.len() > 2048 || target.chars().any(|c| c.is_control() || c == '\\') {
            return None;
        }
        if target.starts_with('/') {
            // One level of decoding too: an app that decodes the value
            // again must not find `//evil.com` in it either.
            let decoded = percent_decode_str(target).decode_utf8().ok()?;
            if target.starts_with("//")
                || decoded.starts_with("//")
                || decoded.contains('\\')
                || decoded.chars().any(char::is_control)
            {
                return None;
            }
            return Some(target.to_string());
        }
        let url = url::Url::parse(target).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        // `https:evil.com` parses with host evil.com; so does every other
        // sloppy spelling: the host rule is what stops them.
        self.host_allowed(host).then(|| url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy {
            own_host: "app.example.com".into(),
            allowed: vec![".example.org".into(), "grafana.corp.test".into()],
        }
    }

    #[test]
    fn open_redirect_tricks_are_refused() {
        let p = policy();
        for bad in [
            "//evil.com",
            "//evil.com/x",
            "/\\evil.com",
            "\\\\evil.com",
            "https:evil.com",
            "https:/evil.com",
            "http://evil.com",
            "%2F%2Fevil.com",
            "/%2F%2Fevil.com",
            "/%2f/evil.com",
            "/%5Cevil.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "/ok\r\nSet-Cookie: x=1",
            "/ok\nx",
            "/ok%0d%0aSet-Cookie:x",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "https://app.example.com.evil.com/",
            "https://evilexample.org/",
            "",
            "evil.com",
        ] {
            assert_eq!(p.check(bad), None, "{bad:?} was accepted");
        }
    }

    #[test]
    fn own_paths_and_allowed_hosts_pass() {
        let p = policy();
        for good in [
            "/",
            "/dashboards?id=3&x=%2F",
            "https://app.example.com/x",
            "https://APP.example.com/x",
            "https://a.example.org/",
            "https://example.org/",
            "http://grafana.corp.test/d",
        ] {
            assert!(p.check(good).is_some(), "{good:?} was refused");
        }
    }
}
