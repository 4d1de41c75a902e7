//! Path normalisation: the one form of a request path that routing, public
//! path rules and the upstream all see, so they can never disagree.
//!
//! Attacks this stops: `/public/../admin`, `//admin`, `/public/%2e%2e/admin`,
//! `/public/..;/admin` (servlet path parameters), `/public/..%2fadmin`,
//! backslashes that Windows stacks treat as slashes, and NUL bytes. The query
//! is never part of the path, so `?`/`#` tricks cannot reach a rule.

use std::borrow::Cow;

/// What to do with `%2F` and `%5C` (encoded `/` and `\`) inside a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapedSlashes {
    /// Refuse the request: safest, and what most apps never need.
    #[default]
    Reject,
    /// Decode them into real separators before normalising.
    Decode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with `/`")]
    NotAbsolute,
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    #[error("the path has an encoded NUL byte")]
    Nul,
    #[error("the path has an encoded `/` or `\\`")]
    EscapedSlash,
}

/// Normalises `raw` (the path without query). Returns the input unchanged,
/// without allocating, when it is already normal.
pub fn normalize(raw: &str, slashes: EscapedSlashes) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw, slashes)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        // Servlet containers drop `;params` from each segment before they
        // resolve dots, so `..;x` is `..` to them: it must be to us too.
        let segment = segment.split(';').next().unwrap_or("");
        trailing_slash = true;
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => {
                segments.push(name);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// True when no rule below could change the path.
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    !bytes.iter().any(|b| matches!(b, b'%' | b';' | b'\\'))
        && !raw.contains("//")
        && !bytes.windows(2).enumerate().any(|(i, w)| {
            // a segment starting with a dot: `/.`, `/..`, `/.hidden` (the
            // last is harmless but rare enough to take the slow path)
            w == b"/." && (i + 2 == bytes.len() || matches!(bytes[i + 2], b'/' | b'.'))
        })
}

/// Decodes escapes of unreserved characters (RFC 3986 §6.2.2.2), upper-cases
/// the hex of the others, and handles escaped slashes and backslashes.
fn decode_unreserved(raw: &str, slashes: EscapedSlashes) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
                let value = hex_value(hex[0])
                    .zip(hex_value(hex[1]))
                    .map(|(hi, lo)| hi << 4 | lo)
                    .ok_or(PathError::BadEscape)?;
                match value {
                    0 => return Err(PathError::Nul),
                    b'/' | b'\\' => match slashes {
                        EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
                        EscapedSlashes::Decode => out.push('/'),
                    },
                    // An escaped `;` is a parameter separator to some
                    // servers: treat it as one so `..%3B` is `..;` is `..`.
                    b';' => out.push(';'),
                    v if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') => out.push(char::from(v)),
                    v => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(v >> 4)]));
                        out.push(char::from(HEX[usize::from(v & 0xf)]));
                    }
                }
                i += 3;
            }
            b'\\' => match slashes {
                EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
                EscapedSlashes::Decode => {
                    out.push('/');
                    i += 1;
                }
            },
            _ => {
                // Copy the run up to the next special byte as one slice, so
                // multi-byte characters stay whole.
                let end = bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b'%' | b'\\'))
                    .map_or(bytes.len(), |p| i + p);
                out.push_str(&raw[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Route prefixes match on segment boundaries and ignore ASCII case, so
/// `/ADMIN` cannot dodge an `/admin` route on a case-insensitive upstream.
pub fn route_prefix_matches(path: &str, prefix: &str) -> bool {
    let (p, q) = (path.as_bytes(), prefix.as_bytes());
    p.len() >= q.len()
        && p[..q.len()].eq_ignore_ascii_case(q)
        && (q.ends_with(b"/") || p.len() == q.len() || p[q.len()] == b'/')
}

/// Public rules match case-sensitively: a case variant of a public path is
/// treated as protected (fail closed). `/x/` is a prefix rule, `/x` exact.
pub fn public_rule_matches(path: &str, rule: &str) -> bool {
    if rule.ends_with('/') {
        path.starts_with(rule)
    } else {
        path == rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        normalize(raw, EscapedSlashes::Reject).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_pass_untouched() {
        for p in ["/", "/a", "/a/b/", "/a.b/c-d_e~f", "/api/v1/users", "/a/.well-known"] {
            assert_eq!(norm(p).as_deref(), Ok(p), "{p}");
            assert!(matches!(normalize(p, EscapedSlashes::Reject), Ok(Cow::Borrowed(_))) || p.contains("/."));
        }
    }

    #[test]
    fn dot_segments_and_empty_segments_resolve() {
        let cases = [
            ("//admin", "/admin"),
            ("/public/../admin", "/admin"),
            ("/public/./../admin", "/admin"),
            ("/../../admin", "/admin"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a//b///c", "/a/b/c"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2e/admin", "/admin"),
            ("/public/.%2E/admin", "/admin"),
            ("/public/..;/admin", "/admin"),
            ("/public;jsessionid=1/../admin", "/admin"),
            ("/admin;x=1", "/admin"),
            ("/public/..%3B/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/a%23b", "/a%23b"),
        ];
        for (raw, want) in cases {
            assert_eq!(norm(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn escaped_slashes_are_refused_or_decoded() {
        assert_eq!(norm("/public/..%2fadmin"), Err(PathError::EscapedSlash));
        assert_eq!(norm("/public/..%5Cadmin"), Err(PathError::EscapedSlash));
        assert_eq!(norm("/public\\..\\admin"), Err(PathError::EscapedSlash));
        let decoded = normalize("/public/..%2fadmin", EscapedSlashes::Decode).map(Cow::into_owned);
        assert_eq!(decoded.as_deref(), Ok("/admin"));
        let decoded = normalize("/public\\..\\admin", EscapedSlashes::Decode).map(Cow::into_owned);
        assert_eq!(decoded.as_deref(), Ok("/admin"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(norm("/a%"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%g1"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%00"), Err(PathError::Nul));
        assert_eq!(norm("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(norm("*"), Err(PathError::NotAbsolute));
        assert_eq!(norm("/é/%c3%a9/.."), Ok("/é/".into()));
    }

    #[test]
    fn normal_form_is_a_fixed_point() {
        for raw in ["/a/../b/./c//d;e/%2e%2e/f%7e", "/x/%41%42/", "/..;/..;/z"] {
            let once = norm(raw).expect("normalises");
            assert_eq!(norm(&once).as_deref(), Ok(once.as_str()), "{raw}");
        }
    }

    #[test]
    fn route_prefixes_respect_segments_and_ignore_case() {
        assert!(route_prefix_matches("/app", "/app"));
        assert!(route_prefix_matches("/app/x", "/app"));
        assert!(route_prefix_matches("/APP/x", "/app"));
        assert!(!route_prefix_matches("/apple", "/app"));
        assert!(route_prefix_matches("/anything", "/"));
        assert!(route_prefix_matches("/app/x", "/app/"));
        assert!(!route_prefix_matches("/app", "/app/"));
    }

    #[test]
    fn public_rules_are_exact_or_slash_prefixes_and_case_sensitive() {
        assert!(public_rule_matches("/public/a.css", "/public/"));
        assert!(!public_rule_matches("/publicity", "/public/"));
        assert!(!public_rule_matches("/PUBLIC/a.css", "/public/"));
        assert!(public_rule_matches("/api/health", "/api/health"));
        assert!(!public_rule_matches("/api/health/x", "/api/health"));
        assert!(!public_rule_matches("/api/healthz", "/api/health"));
    }
}
