//! Reading the config file and reporting every problem with its place.
//!
//! Type errors come from serde (with the key path from
//! `serde_path_to_error` and the span from `toml`); the checks past types
//! come from [`super::validate`] as key paths, placed with `toml_edit`.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::issues::{KeyPath, Seg};
use super::validate::validate;
use super::Config;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

/// One problem, placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `route[1].upstream`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Checks that need more than the config's own types (compiling the
/// identity policies, reading key files): problems as (key path, message),
/// placed in the file like every other problem.
pub type ExtraChecks<'a> = &'a dyn Fn(&Config) -> Vec<(String, String)>;

/// Reads and checks a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with(path, &|_| Vec::new())
}

/// Reads a config file and runs the config's checks and `extra`'s.
pub fn load_file_with(path: &Path, extra: ExtraChecks<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_str_with(&text, &path.display().to_string(), extra)
}

/// Parses and checks config text; `file` is only used in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_str_with(text, file, &|_| Vec::new())
}

/// [`parse_str`] with extra checks.
pub fn parse_str_with(text: &str, file: &str, extra: ExtraChecks<'_>) -> Result<Config, ConfigError> {
    let place = |span: Option<Range<usize>>, key: String, message: String| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        Problem {
            file: file.to_string(),
            line,
            column,
            key,
            message,
        }
    };

    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| ConfigError::Invalid(vec![place(e.span(), String::new(), e.message().trim().to_string())]))?;
    let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        let message = inner.message().trim().to_string();
        // Errors raised after buffering (the provider `kind` enum) carry no
        // span: find the key in the document instead.
        let span = inner.span().or_else(|| {
            let doc = toml_edit::Document::parse(text).ok()?;
            let mut path = KeyPath::parse(&key);
            if let Some(field) = named_field(&message) {
                path.0.push(Seg::Name(field.to_string()));
            }
            span_of(doc.as_item(), &path)
        });
        ConfigError::Invalid(vec![place(span, key, message)])
    })?;

    let mut issues = validate(&config);
    issues.extend(
        extra(&config)
            .into_iter()
            .map(|(key, message)| (KeyPath::parse(&key), message)),
    );
    if issues.is_empty() {
        return Ok(config);
    }
    // The text parsed once already, so this parse only fails if toml and
    // toml_edit disagree; then problems are placed at the top of the file.
    let doc = toml_edit::Document::parse(text).ok();
    let problems = issues
        .into_iter()
        .map(|(path, message)| {
            let span = doc.as_ref().and_then(|d| span_of(d.as_item(), &path));
            place(span, path.to_string(), message)
        })
        .collect();
    Err(ConfigError::Invalid(problems))
}

/// The span of the deepest part of `path` present in the document: a key
/// left at its default is reported at its table.
fn span_of(root: &toml_edit::Item, path: &KeyPath) -> Option<Range<usize>> {
    let mut item = root;
    let mut best = None;
    for seg in &path.0 {
        let next = match seg {
            Seg::Key(key) => item.get(*key),
            Seg::Name(key) => item.get(key.as_str()),
            Seg::Index(index) => item.get(*index),
        };
        match next {
            Some(next) => {
                item = next;
                best = item.span().or(best);
            }
            None => break,
        }
    }
    best
}

/// The field a serde message names (`unknown field `x``, `missing field `x``).
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// For the checks' unit tests: every problem `text` has, as
/// `key: message` lines (none when it loads).
#[cfg(test)]
pub(crate) fn problems_in(text: &str) -> Vec<String> {
    match parse_str(text, "doorward.toml") {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect(),
        Err(other) => panic!("{other:?}"),
    }
}

/// For the checks' unit tests: a config with one OIDC provider and one
/// route that passes every check, to add the keys under test to.
#[cfg(test)]
pub(crate) const PASSING_BASE: &str = "[server]\npublic_url = \"http://127.0.0.1:4180\"\n\
    [session]\nkeys = [\"k0123456789abcdef0123456789abcdef\"]\n\
    [[provider]]\nname = \"idp\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n\
    client_secret = \"s\"\n[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n";

/// For the checks' unit tests: the problems of the passing base with
/// `extra` appended, and whether one of them starts with `start`.
#[cfg(test)]
pub(crate) fn problems_with(extra: &str) -> Vec<String> {
    problems_in(&format!("{PASSING_BASE}{extra}"))
}

#[cfg(test)]
pub(crate) fn has_problem(found: &[String], start: &str) -> bool {
    found.iter().any(|m| m.starts_with(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match parse_str(text, "doorward.toml") {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let p = problems("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].line, p[0].key.as_str()), (3, "server.lisen"), "{p:?}");
        assert!(p[0].message.contains("unknown field `lisen`"), "{p:?}");
    }

    #[test]
    fn type_error_names_nested_key() {
        let text = "[[route]]\nname = \"a\"\nupstream = \"http://127.0.0.1:1\"\n\n[[route]]\nname = \"b\"\nupstream = \"http://127.0.0.1:2\"\ntimeout = \"soon\"\n";
        let p = problems(text);
        assert_eq!((p[0].line, p[0].key.as_str()), (8, "route[1].timeout"), "{p:?}");
        assert!(p[0].message.contains("not a duration"), "{p:?}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let p = problems("[server\nlisten = 1\n");
        assert_eq!(p[0].line, 1, "{p:?}");
    }

    #[test]
    fn validation_problems_are_all_reported_with_places() {
        let text = "[[route]]\nname = \"a\"\nupstream = \"ftp://x\"\npublic = [\"nope\"]\n";
        let p = problems(text);
        let keys: Vec<_> = p.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert!(keys.contains(&(3, "route[0].upstream")), "{p:?}");
        assert!(keys.contains(&(4, "route[0].public[0]")), "{p:?}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
