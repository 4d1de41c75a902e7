//! Secret values: redacted in `Debug`, compared in constant time, and loaded
//! from the environment or a file so they need not sit in the config.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Shortest secret accepted: 32 bytes, as a session key derivation needs
/// and as much as a bearer credential should have.
pub const MIN_SECRET_LEN: usize = 32;

/// A secret string. It never prints and compares in constant time, so it can
/// be logged by accident without harm and checked without a timing oracle.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison against a presented value.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set or not valid UTF-8")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("the secret from {0} is empty")]
    Empty(String),
}

/// Where a secret comes from. Inline values are allowed for development, but
/// `env` and `file` keep secrets out of the config file.
#[derive(Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretSource {
    Env { env: String },
    File { file: PathBuf },
    Inline(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { env } => write!(f, "env:{env}"),
            Self::File { file } => write!(f, "file:{}", file.display()),
            Self::Inline(_) => f.write_str("[redacted]"),
        }
    }
}

impl SecretSource {
    /// Reads the secret. File contents lose one trailing newline, as editors
    /// and `echo` add one.
    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        let (value, origin) = match self {
            Self::Inline(value) => (value.clone(), "the config file".to_string()),
            Self::Env { env } => (
                std::env::var(env).map_err(|_| SecretError::MissingEnv(env.clone()))?,
                format!("environment variable `{env}`"),
            ),
            Self::File { file } => {
                let mut text = std::fs::read_to_string(file).map_err(|source| SecretError::File {
                    path: file.display().to_string(),
                    source,
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                (text, format!("file {}", file.display()))
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(SecretString(value))
    }
}

/// The scheme of a URL that may carry a password (in its userinfo or its
/// query, as PostgreSQL's may), for messages about a URL that was refused:
/// the rest is never shown. `None` when it does not start with a scheme.
pub fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    well_formed.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_urls_scheme_is_shown() {
        assert_eq!(url_scheme("postgress://u:hunter2@h/db"), Some("postgress"));
        assert_eq!(url_scheme("mysql://h/db?password=hunter2"), Some("mysql"));
        assert_eq!(url_scheme("u:hunter2@h/db"), Some("u"));
        assert_eq!(url_scheme("hunter2@h/db"), None);
        assert_eq!(url_scheme("//u:hunter2@h:5432/db"), None);
        assert_eq!(url_scheme(""), None);
    }

    #[test]
    fn inline_secrets_never_print() {
        let secret = SecretSource::Inline("hunter2".into());
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn secrets_compare_by_value_and_never_print() {
        let secret = SecretString::new("s3cret".into());
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cre"));
        assert!(!secret.matches(b"s3cret!"));
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn file_secrets_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "abc\n").expect("write");
        let secret = SecretSource::File { file: path }.resolve().expect("resolves");
        assert_eq!(secret.expose(), "abc");
    }

    #[test]
    fn missing_env_secret_names_the_variable() {
        let err = SecretSource::Env {
            env: "DOORWARD_TEST_SURELY_UNSET".into(),
        }
        .resolve()
        .expect_err("unset");
        assert!(err.to_string().contains("DOORWARD_TEST_SURELY_UNSET"));
    }
}
