//! Property test: a few hundred thousand garbled inputs, from a seeded PRNG
//! so a failure reproduces, fed to both parsers. Nothing may panic; whatever
//! parses must print back to an equal AST; evaluating it must not panic.
//! Bounded in time as well as count, for a shared 2-core machine.
//! (A cargo-fuzz target can reuse `check_one` later.)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{bjensen, jomalley, RFC_FILTERS};
use crate::scim::{CoreSchema, Filter, PatchPath, MAX_FILTER_LEN};

/// xorshift64*: tiny, seeded, good enough to shuffle grammar pieces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "userName",
    "emails",
    "name.givenName",
    "members",
    "value",
    "type",
    "active",
    "meta.lastModified",
    "x",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ":manager",
    "$ref",
    ".value",
    "not",
    "NOT",
    "and",
    "AND",
    "or",
    "Or",
    "eq",
    "ne",
    "co",
    "sw",
    "ew",
    "pr",
    "gt",
    "ge",
    "lt",
    "le",
    "regex",
    "(",
    ")",
    "[",
    "]",
    ".",
    ":",
    " ",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\"x\"",
    "\"work\"",
    "\"a\\\"b\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"",
    "\\",
    "12",
    "-1.5e3",
    "0",
    "01",
    "1e400",
    "true",
    "FALSE",
    "null",
    "\"2011-05-13T04:42:34Z\"",
    "é",
    "日本",
    "\u{0}",
    "\u{1b}",
    "\u{feff}",
];

const PATHS: &[&str] = &[
    "members",
    r#"members[value eq "2819c223"]"#,
    r#"emails[type eq "work"].value"#,
    r#"addresses[type eq "work" and primary eq true].streetAddress"#,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "name.givenName",
    r#"emails[type eq "work" or not (value co "x")].display"#,
];

fn token_soup(rng: &mut Rng) -> String {
    (0..1 + rng.below(24)).map(|_| rng.pick(TOKENS)).collect()
}

/// Random characters, mostly from the grammar's alphabet.
fn random_chars(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"aZ09 \"\\[]().:-_$/eEuU+ptrnqo\t";
    (0..rng.below(48))
        .map(|_| match rng.below(10) {
            0..=6 => char::from(ALPHABET[rng.below(ALPHABET.len())]),
            7 | 8 => char::from(rng.below(128) as u8),
            _ => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
        })
        .collect()
}

/// A valid filter or path with a few random edits.
fn mutated(rng: &mut Rng) -> String {
    let base = if rng.below(3) == 0 {
        rng.pick(PATHS)
    } else {
        rng.pick(&RFC_FILTERS)
    };
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let end = (at + 1 + rng.below(6)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 => {
                let token: Vec<char> = rng.pick(TOKENS).chars().collect();
                chars.splice(at..at, token);
            }
            2 if !chars.is_empty() => {
                let start = rng.below(chars.len());
                let piece: Vec<char> = chars[start..(start + 1 + rng.below(12)).min(chars.len())].to_vec();
                chars.splice(at..at, piece);
            }
            _ if at < chars.len() => chars[at] = char::from(32 + rng.below(95) as u8),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Deep nesting around the limit, sometimes unbalanced.
fn nested(rng: &mut Rng) -> String {
    let depth = 20 + rng.below(20);
    let mut text = String::new();
    let mut closers = Vec::new();
    for _ in 0..depth {
        match rng.below(3) {
            0 => (text.push('('), closers.push(')')),
            1 => (text.push_str("not ("), closers.push(')')),
            _ => (text.push_str("emails["), closers.push(']')),
        };
    }
    text.push_str(rng.pick(&["a pr", "type eq \"work\"", "value co 1", ""]));
    for (i, closer) in closers.into_iter().rev().enumerate() {
        text.push(closer);
        if i % 5 == 4 {
            text.push_str(rng.pick(&[" and b pr", " or c eq null", ".value eq \"x\"", ""]));
        }
    }
    text
}

struct Counts {
    filters: usize,
    paths: usize,
}

fn check_one(input: &str, resources: &[Value], counts: &mut Counts) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(filter) = Filter::parse(input) {
            counts.filters += 1;
            let printed = filter.to_string();
            assert_eq!(Filter::parse(&printed).as_ref(), Ok(&filter), "printed as {printed:?}");
            for resource in resources {
                let _ = filter.matches(resource, &CoreSchema);
            }
        }
        if let Ok(path) = PatchPath::parse(input) {
            counts.paths += 1;
            let printed = path.to_string();
            assert_eq!(PatchPath::parse(&printed).as_ref(), Ok(&path), "printed as {printed:?}");
            for resource in resources {
                let _ = path.matching_indexes(resource, &CoreSchema);
            }
        }
    }));
    if outcome.is_err() {
        panic!("input {input:?} failed the property (see the panic above)");
    }
}

#[test]
fn garbled_inputs_never_panic_and_parsed_ones_round_trip() {
    let resources = [
        bjensen(),
        jomalley(),
        json!({"members": [{"value": "2819c223"}, "loose", null], "x": [1, "1", true, {"value": null}]}),
        json!("not an object"),
    ];
    let mut counts = Counts { filters: 0, paths: 0 };
    for extreme in ["(", "[", "not (", "\"", "\\", "a.", "x[", "a pr and ", ")"] {
        let long: String = extreme.repeat(MAX_FILTER_LEN / extreme.len());
        check_one(&long, &resources, &mut counts);
        check_one(&long[..long.len() - extreme.len()], &resources, &mut counts);
    }
    let mut rng = Rng(0x5C1D_F17E_4B3A_9001);
    let started = Instant::now();
    let mut runs = 0usize;
    while runs < 300_000 && started.elapsed() < Duration::from_millis(1500) {
        let input = match runs % 4 {
            0 => token_soup(&mut rng),
            1 => mutated(&mut rng),
            2 => random_chars(&mut rng),
            _ => nested(&mut rng),
        };
        check_one(&input, &resources, &mut counts);
        runs += 1;
    }
    println!(
        "{runs} inputs in {:?}: {} parsed as filters, {} as paths",
        started.elapsed(),
        counts.filters,
        counts.paths
    );
    assert!(runs >= 20_000, "only {runs} inputs ran in the time budget");
    assert!(
        counts.filters > runs / 50 && counts.paths > runs / 200,
        "the generators rarely produce valid inputs"
    );
}
