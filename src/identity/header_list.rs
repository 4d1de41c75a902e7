//! How lists travel in one header: items joined by `,`, each item
//! percent-encoded for `%`, `,`, `"`, controls, spaces and non-ASCII (as
//! UTF-8). Plain names stay readable (`engineers,staff`); any name survives
//! the round trip; CR/LF can never reach the wire.
//!
//! Decoding: split on `,`, then percent-decode each item as UTF-8.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

const ITEM: &AsciiSet = &CONTROLS.add(b'%').add(b',').add(b'"').add(b' ').add(b';').add(b'\\');

/// Encodes one value (also used for single-valued headers such as the user).
pub fn encode_item(item: &str) -> String {
    utf8_percent_encode(item, ITEM).to_string()
}

pub fn encode(items: &[String]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.extend(utf8_percent_encode(item, ITEM));
    }
    out
}

/// The inverse of [`encode`], for tests and for upstreams written in Rust.
pub fn decode(header: &str) -> Vec<String> {
    if header.is_empty() {
        return Vec::new();
    }
    header
        .split(',')
        .map(|item| percent_decode_str(item).decode_utf8_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awkward_names_round_trip_and_stay_on_one_line() {
        let items: Vec<String> = [
            "plain",
            "Marketing Team",
            "a,b",
            "say \"hi\"",
            "Ärzte-Gruppe",
            "50%",
            "x\r\nX-Evil: 1",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let header = encode(&items);
        assert!(!header.contains('\r') && !header.contains('\n') && !header.contains(' '));
        assert!(header.is_ascii());
        assert_eq!(decode(&header), items);
        assert_eq!(encode(&["engineers".into(), "staff".into()]), "engineers,staff");
    }
}
