//! Small value types the config is written in: durations ("20s", "8h"),
//! byte sizes ("10MiB") and secrets that may live outside the file.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Shortest secret accepted (session keys, SCIM and admin credentials).
pub use crate::secret::MIN_SECRET_LEN;

/// A duration written the human way ("500ms", "20s", "8h", "7d").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        humantime::parse_duration(&text).map(Self).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write it like \"500ms\", \"20s\", \"8h\""
            ))
        })
    }
}

/// A size in bytes: a plain integer or a string with a unit ("64KiB", "10MB").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    fn parse(text: &str) -> Option<u64> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(scale)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(de)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).map(Self).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a size; write bytes as an integer or like \"64KiB\", \"10MB\", \"1GiB\""
                ))
            }),
        }
    }
}

/// Where a secret comes from: defined beside [`SecretString`](crate::secret::SecretString),
/// which it resolves into.
pub use crate::secret::SecretSource;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("10"), Some(10));
        assert_eq!(ByteSize::parse("64KiB"), Some(65_536));
        assert_eq!(ByteSize::parse("10MB"), Some(10_000_000));
        assert_eq!(ByteSize::parse("1GiB"), Some(1 << 30));
        assert_eq!(ByteSize::parse("10 parsecs"), None);
        assert_eq!(ByteSize::parse("99999999999999999999GiB"), None);
    }
}
