//! The host a request is for, read once and strictly, in canonical form:
//! routing, `X-Forwarded-Host` and the upstream's `Host` all use this, so a
//! host that an upstream would read differently (a trailing dot, a case
//! variant, `user@host`, non-ASCII bytes, an absolute-form URI naming
//! another host than `Host`) cannot pick one route here and mean another
//! app there.

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Uri};

/// Why a request's host was refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the Host header is sent more than once")]
    Duplicate,
    #[error("the host is not a DNS name or IP literal")]
    Invalid,
    #[error("the port is not a number from 1 to 65535")]
    BadPort,
    #[error("the request target names another host than the Host header")]
    Mismatch,
}

/// A canonical host: lower-case DNS name without a trailing dot, or an IP
/// literal (IPv6 in brackets), and the port when one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    pub name: String,
    pub port: Option<u16>,
}

impl RequestHost {
    /// `name[:port]`, as the upstream's `Host` and `X-Forwarded-Host`.
    pub fn header_value(&self) -> Option<HeaderValue> {
        let text = match self.port {
            Some(port) => format!("{}:{port}", self.name),
            None => self.name.clone(),
        };
        HeaderValue::from_str(&text).ok()
    }
}

/// The request's host: from `Host`, or from the URI's authority (HTTP/2
/// `:authority`, HTTP/1.1 absolute-form); when both are present they must
/// agree. `Ok(None)` for a request without any (HTTP/1.0).
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<Option<RequestHost>, HostError> {
    let mut values = headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostError::Duplicate);
    }
    let from_header = header.map(|v| parse(v.as_bytes())).transpose()?;
    let from_uri = uri.authority().map(|a| parse(a.as_str().as_bytes())).transpose()?;
    match (from_header, from_uri) {
        (Some(header), Some(uri)) if header != uri => Err(HostError::Mismatch),
        (Some(host), _) | (None, Some(host)) => Ok(Some(host)),
        (None, None) => Ok(None),
    }
}

/// Parses `host[:port]` strictly (RFC 3986 authority without userinfo,
/// reg-name limited to DNS characters).
pub fn parse(raw: &[u8]) -> Result<RequestHost, HostError> {
    if raw.is_empty() || raw.len() > 300 || !raw.is_ascii() {
        return Err(HostError::Invalid);
    }
    let text = std::str::from_utf8(raw).map_err(|_| HostError::Invalid)?;
    let (name, port) = if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest.split_once(']').ok_or(HostError::Invalid)?;
        let ip: std::net::Ipv6Addr = literal.parse().map_err(|_| HostError::Invalid)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(HostError::Invalid)?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        };
        (dns_name(name)?, port)
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HostError::BadPort);
            }
            match digits.parse::<u16>() {
                Ok(0) | Err(_) => return Err(HostError::BadPort),
                Ok(port) => Some(port),
            }
        }
    };
    Ok(RequestHost { name, port })
}

/// A DNS name (or dotted IPv4), lower-cased, without its trailing dot.
fn dns_name(name: &str) -> Result<String, HostError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(HostError::Invalid);
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(HostError::Invalid);
        }
    }
    // All-numeric labels must make a real IPv4 address: `1.2.3` or
    // `999.1.1.1` mean different things to different parsers.
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) && name.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(HostError::Invalid);
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(raw: &str) -> Result<RequestHost, HostError> {
        parse(raw.as_bytes())
    }

    #[test]
    fn canonical_forms() {
        let h = host("App.Example.COM.:8443").expect("valid");
        assert_eq!((h.name.as_str(), h.port), ("app.example.com", Some(8443)));
        assert_eq!(host("[::1]:80").map(|h| h.name), Ok("[::1]".into()));
        assert_eq!(host("[0:0::1]").map(|h| h.name), Ok("[::1]".into()));
        assert_eq!(host("127.0.0.1").map(|h| h.port), Ok(None));
        assert_eq!(host("localhost").map(|h| h.name), Ok("localhost".into()));
    }

    #[test]
    fn tricks_are_refused_with_their_error() {
        for (raw, error) in [
            ("evil.com@app.example.com", HostError::Invalid),
            ("app.example.com:80@evil.com", HostError::BadPort),
            ("app.exämple.com", HostError::Invalid),
            ("app..example.com", HostError::Invalid),
            ("app.example.com:", HostError::BadPort),
            ("app.example.com:0", HostError::BadPort),
            ("app.example.com:65536", HostError::BadPort),
            ("app.example.com:+80", HostError::BadPort),
            ("app example.com", HostError::Invalid),
            ("1.2.3", HostError::Invalid),
            ("999.1.1.1", HostError::Invalid),
            ("[::1", HostError::Invalid),
            ("[::1]x", HostError::Invalid),
            ("[evil]", HostError::Invalid),
            ("-app.example.com", HostError::Invalid),
            ("", HostError::Invalid),
            (".", HostError::Invalid),
        ] {
            assert_eq!(host(raw), Err(error), "{raw:?}");
        }
        assert_eq!(parse(b"app\xff.com"), Err(HostError::Invalid));
    }

    #[test]
    fn absolute_form_must_agree_with_host() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("app.example.com"));
        let uri: Uri = "http://admin.example.com/x".parse().expect("uri");
        assert_eq!(request_host(&uri, &headers), Err(HostError::Mismatch));
        let uri: Uri = "http://APP.example.com./x".parse().expect("uri");
        assert!(
            request_host(&uri, &headers).is_ok(),
            "the same host in another spelling"
        );
        headers.append(HOST, HeaderValue::from_static("app.example.com"));
        let uri: Uri = "/x".parse().expect("uri");
        assert_eq!(request_host(&uri, &headers), Err(HostError::Duplicate));
        assert_eq!(request_host(&uri, &HeaderMap::new()), Ok(None));
    }
}
