//! Claim paths: where in the claims a value lives. `groups`,
//! `realm_access.roles`, `resource_access."my-app".roles`, and URL-named
//! claims such as `https://example.com/groups` (a whole top-level key).

use std::borrow::Cow;

use serde_json::Value;

use super::Claims;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    raw: String,
    segments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimPathError {
    #[error("a claim path cannot be empty")]
    Empty,
    #[error("unterminated quote in claim path `{0}`")]
    Unterminated(String),
    #[error("empty segment in claim path `{0}` (two dots, or a leading/trailing dot)")]
    EmptySegment(String),
}

impl ClaimPath {
    pub fn parse(raw: &str) -> Result<Self, ClaimPathError> {
        if raw.is_empty() {
            return Err(ClaimPathError::Empty);
        }
        // A URL-named claim is one key, dots and all.
        if raw.contains("://") && !raw.contains('"') {
            return Ok(Self {
                raw: raw.to_string(),
                segments: vec![raw.to_string()],
            });
        }
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut chars = raw.chars().peekable();
        let mut quoted_segment = false;
        while let Some(c) = chars.next() {
            match c {
                '"' if current.is_empty() && !quoted_segment => {
                    quoted_segment = true;
                    let mut closed = false;
                    while let Some(q) = chars.next() {
                        match q {
                            '\\' => {
                                if let Some(escaped) = chars.next() {
                                    current.push(escaped);
                                }
                            }
                            '"' => {
                                closed = true;
                                break;
                            }
                            other => current.push(other),
                        }
                    }
                    if !closed {
                        return Err(ClaimPathError::Unterminated(raw.to_string()));
                    }
                }
                '.' => {
                    if current.is_empty() && !quoted_segment {
                        return Err(ClaimPathError::EmptySegment(raw.to_string()));
                    }
                    segments.push(std::mem::take(&mut current));
                    quoted_segment = false;
                }
                other => current.push(other),
            }
        }
        if current.is_empty() && !quoted_segment {
            return Err(ClaimPathError::EmptySegment(raw.to_string()));
        }
        segments.push(current);
        Ok(Self {
            raw: raw.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value at this path; a top-level key spelled exactly like the
    /// whole path wins (IdPs do name claims `https://x/y` or `a.b`).
    pub fn lookup<'a>(&self, claims: &'a Claims) -> Option<&'a Value> {
        if let Some(value) = claims.get(&self.raw) {
            return Some(value);
        }
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first)?;
        for segment in rest {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }

    /// Every string at this path: an array's strings (numbers too), a
    /// single string (split on `delimiter` if one is set), nothing else.
    /// Strings are borrowed from the claims: mapping 250 groups should not
    /// copy 250 strings first.
    pub fn strings<'a>(&self, claims: &'a Claims, delimiter: Option<&str>) -> Option<Vec<Cow<'a, str>>> {
        let value = self.lookup(claims)?;
        let scalar = |v: &'a Value| -> Option<Cow<'a, str>> {
            match v {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                _ => None,
            }
        };
        Some(match value {
            Value::Array(items) => items.iter().filter_map(scalar).collect(),
            Value::String(s) => match delimiter {
                Some(d) if !d.is_empty() => s
                    .split(d)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(Cow::Borrowed)
                    .collect(),
                _ => vec![Cow::Borrowed(s.as_str())],
            },
            Value::Null => Vec::new(),
            other => scalar(other).into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn nested_quoted_and_url_named_paths() {
        let c = claims(json!({
            "realm_access": {"roles": ["a", "b"]},
            "resource_access": {"my-app": {"roles": ["x"]}, "my.app": {"roles": ["dotted"]}},
            "https://example.com/groups": ["g1"],
            "a.b": "literal",
        }));
        let get = |p: &str| {
            ClaimPath::parse(p)
                .expect("parses")
                .strings(&c, None)
                .map(|v| v.into_iter().map(|s| s.into_owned()).collect::<Vec<String>>())
        };
        assert_eq!(get("realm_access.roles"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(get("resource_access.\"my-app\".roles"), Some(vec!["x".into()]));
        assert_eq!(get("resource_access.\"my.app\".roles"), Some(vec!["dotted".into()]));
        assert_eq!(get("https://example.com/groups"), Some(vec!["g1".into()]));
        assert_eq!(get("a.b"), Some(vec!["literal".into()]));
        assert_eq!(get("realm_access.missing"), None);
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn single_and_delimited_strings() {
        let c = claims(json!({"g": "a, b,,c", "n": [1, "x", {"no": 1}]}));
        let owned =
            |v: Option<Vec<Cow<'_, str>>>| v.map(|v| v.into_iter().map(Cow::into_owned).collect::<Vec<String>>());
        let p = ClaimPath::parse("g").expect("parses");
        assert_eq!(owned(p.strings(&c, None)), Some(vec!["a, b,,c".to_string()]));
        assert_eq!(
            owned(p.strings(&c, Some(","))),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        let n = ClaimPath::parse("n").expect("parses");
        assert_eq!(owned(n.strings(&c, None)), Some(vec!["1".into(), "x".into()]));
    }

    #[test]
    fn bad_paths_are_errors() {
        assert_eq!(ClaimPath::parse(""), Err(ClaimPathError::Empty));
        assert!(ClaimPath::parse("a..b").is_err());
        assert!(ClaimPath::parse(".a").is_err());
        assert!(ClaimPath::parse("a.").is_err());
        assert!(ClaimPath::parse("a.\"b").is_err());
    }
}
