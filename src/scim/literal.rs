//! The JSON literals a filter compares with (RFC 7644 §3.4.2.2 `compValue`
//! is built on RFC 8259): strings with their escapes, and numbers.
//!
//! Strict on purpose: raw control characters, unknown escapes, unpaired
//! surrogates, leading zeros, `+1`, `.5` and numbers beyond f64 (`1e400`)
//! are refused, so a value means one thing here and in any JSON tool that
//! later logs or replays it.

use serde_json::Number;

use crate::scim::filter::FilterError;

/// Reads the string whose opening quote is at `start`; returns it and the
/// offset just past its closing quote.
pub(crate) fn string(src: &str, start: usize) -> Result<(String, usize), FilterError> {
    let mut cursor = Cursor {
        src,
        bytes: src.as_bytes(),
        pos: start,
    };
    let text = cursor.string()?;
    Ok((text, cursor.pos))
}

/// Reads the number starting at `start`; returns it and the offset after it.
pub(crate) fn number(src: &str, start: usize) -> Result<(Number, usize), FilterError> {
    let mut cursor = Cursor {
        src,
        bytes: src.as_bytes(),
        pos: start,
    };
    let value = cursor.number()?;
    Ok((value, cursor.pos))
}

struct Cursor<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// A JSON string (RFC 8259 §7), the cursor on the opening quote.
    fn string(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            // The run stops only at ASCII bytes, so both ends are char boundaries.
            out.push_str(self.src.get(run..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(FilterError::UnterminatedString { at: start }),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(start, &mut out)?,
                Some(_) => {
                    return Err(FilterError::InvalidString {
                        at: self.pos,
                        reason: "control characters must be escaped",
                    })
                }
            }
        }
    }

    fn escape(&mut self, start: usize, out: &mut String) -> Result<(), FilterError> {
        let at = self.pos;
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(FilterError::UnterminatedString { at: start });
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4(at)?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let low_at = self.pos;
                        if !(self.peek() == Some(b'\\') && self.bytes.get(self.pos + 1) == Some(&b'u')) {
                            return Err(FilterError::InvalidString {
                                at,
                                reason: "unpaired surrogate in \\u escape",
                            });
                        }
                        self.pos += 2;
                        let low = self.hex4(low_at)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(FilterError::InvalidString {
                                at,
                                reason: "unpaired surrogate in \\u escape",
                            });
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(FilterError::InvalidString {
                            at,
                            reason: "unpaired surrogate in \\u escape",
                        })
                    }
                    _ => unit,
                };
                char::from_u32(code).ok_or(FilterError::InvalidString {
                    at,
                    reason: "invalid \\u escape",
                })?
            }
            _ => {
                return Err(FilterError::InvalidString {
                    at,
                    reason: "unknown escape; use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX",
                })
            }
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> Result<u32, FilterError> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let value = digits.and_then(|d| u32::from_str_radix(d, 16).ok());
        let value = value.ok_or(FilterError::InvalidString {
            at,
            reason: "\\u needs four hex digits",
        })?;
        self.pos += 4;
        Ok(value)
    }

    /// A JSON number (RFC 8259 §6): no leading zeros, no `+`, no bare `.5`.
    fn number(&mut self) -> Result<Number, FilterError> {
        let start = self.pos;
        let invalid = FilterError::InvalidNumber { at: start };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.digits_required() {
                return Err(invalid);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.digits_required() {
                return Err(invalid);
            }
        }
        if self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.') {
            return Err(invalid);
        }
        let text = self.src.get(start..self.pos).ok_or(invalid.clone())?;
        if let Ok(int) = text.parse::<i64>() {
            return Ok(int.into());
        }
        if let Ok(int) = text.parse::<u64>() {
            return Ok(int.into());
        }
        // std's float parsing, not serde_json's: without its
        // `float_roundtrip` feature serde_json does not round correctly
        // (`-1.5e38` came back as -1.4999999999999999e38), so a filter
        // printed and parsed again would change. What f64 cannot hold
        // (`1e400`) is refused, so every Number is finite.
        text.parse::<f64>().ok().and_then(Number::from_f64).ok_or(invalid)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn digits_required(&mut self) -> bool {
        let start = self.pos;
        self.digits();
        self.pos > start
    }
}
