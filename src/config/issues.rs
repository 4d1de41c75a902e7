//! What every check shares: where in the file a problem is (a key path),
//! the list problems are gathered in, and the URL and host tests more than
//! one section uses. Kept apart from the checks so they can import it
//! without importing each other.

use std::fmt;

use http::Uri;

/// Where in the file a problem is, as keys and array indexes.
#[derive(Debug, Clone)]
pub struct KeyPath(pub Vec<Seg>);

#[derive(Debug, Clone)]
pub enum Seg {
    Key(&'static str),
    Name(String),
    Index(usize),
}

impl KeyPath {
    pub fn of(segs: &[Seg]) -> Self {
        Self(segs.to_vec())
    }

    /// Parses `route[1].identity.groups.claim`-style paths.
    pub fn parse(text: &str) -> Self {
        let mut segs = Vec::new();
        for part in text.split('.') {
            match part.split_once('[') {
                Some((name, index)) => {
                    segs.push(Seg::Name(name.to_string()));
                    if let Ok(index) = index.trim_end_matches(']').parse() {
                        segs.push(Seg::Index(index));
                    }
                }
                None => segs.push(Seg::Name(part.to_string())),
            }
        }
        Self(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Name(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Name(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

pub(crate) type Issues = Vec<(KeyPath, String)>;

/// Whether a URL host is the loopback interface (plain http is allowed there).
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL, when it is an absolute http(s) URL with a host.
pub(crate) fn absolute_http_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err(format!("`{url}` must be an absolute http:// or https:// URL")),
    }
}
