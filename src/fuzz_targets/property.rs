//! Every fuzz target as a bounded property test on stable: inputs from a
//! seeded generator (dictionary tokens of the target's grammar, mutated,
//! between random bytes), so a run is reproducible and the suite's cost is
//! fixed. Where cargo-fuzz is missing, `scripts/fuzz-smoke.sh` runs these
//! longer instead of skipping fuzzing.
//!
//! - `DOORWARD_FUZZ_SECONDS=N`: run each target for N seconds (else
//!   `DOORWARD_FUZZ_ITERATIONS`, default 2000 inputs per target).
//! - `DOORWARD_FUZZ_SEED=N`: another seed (a failure prints its seed and
//!   input).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::{Target, TARGETS};

/// SplitMix64: tiny, and the same sequence on every platform and release.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// Tokens of each target's input language, so random inputs reach past the
/// first check.
fn dictionary(target: &str) -> &'static [&'static [u8]] {
    match target {
        "path_normalize" => &[
            b"/", b"//", b".", b"..", b"%2e", b"%2E", b"%2f", b"%2F", b"%5c", b"\\", b";", b"%3b", b"%3B", b"?", b"#",
            b"%", b"%00", b"%25", b"admin", b"a",
        ],
        "redirect_and_cookies" => &[
            b"/",
            b"//",
            b"\\",
            b"http://",
            b"https://",
            b"app.example.com",
            b"evil.com",
            b"x.example.org",
            b"example.org.",
            b"@",
            b":",
            b"%2f",
            b"javascript:",
            b"\t",
            b"\r\n",
            b"doorward=",
            b"doorward-login-x=",
            b"; ",
            b" ",
            b"=",
            b"\xff",
        ],
        "claims" => &[
            b"a",
            b".",
            b"b",
            b"\"",
            b"https://x.test/g",
            b"groups",
            b"[",
            b"]",
            b"\0",
            b",",
            b"%",
            b" ",
            b"\xc3\xa9",
        ],
        "config" => &[
            b"[server]\n",
            b"listen = \"127.0.0.1:0\"\n",
            b"[[route]]\n",
            b"name = \"x\"\n",
            b"upstream = \"http://127.0.0.1:1\"\n",
            b"public = [\"/p/\"]\n",
            b"[[provider]]\n",
            b"[identity.groups]\n",
            b"regex_filter = \"",
            b"(",
            b"*",
            b"=",
            b"\"",
            b"\n",
        ],
        "tokens" => &[
            b"eyJhbGciOiJFZERTQSJ9",
            b"eyJhbGciOiJub25lIn0",
            b".",
            b"{",
            b"}",
            b",",
            b"\"iss\":\"https://idp.test\"",
            b"\"aud\":\"doorward\"",
            b"\"aud\":[\"doorward\",\"x\"]",
            b"\"exp\":1",
            b"\"iat\":1000000",
            b"\"sub\":\"x\"",
            b"\"sid\":\"s\"",
            b"\"jti\":\"j\"",
            b"\"nonce\":\"n\"",
            b"\"events\":{\"http://schemas.openid.net/event/backchannel-logout\":{}}",
        ],
        "host" => &[
            b"app.example.com",
            b".",
            b":",
            b"80",
            b"443",
            b"65536",
            b"0",
            b"[",
            b"]",
            b"::1",
            b"@",
            b"\xc3\xa9",
            b"\xff",
            b"-",
            b"_",
            b"127.0.0.1",
            b"1.2.3",
            b"%",
            b" ",
            b"APP",
        ],
        "forwarding" => &[
            b"\n",
            b": ",
            b"x-forwarded-for",
            b"X_Forwarded_For",
            b"x-forwarded-proto",
            b"x-forwarded-host",
            b"x-real-ip",
            b"forwarded",
            b"x-original-url",
            b"x-rewrite-url",
            b"x-forwarded-prefix",
            b"1.2.3.4",
            b", ",
            b"\xff",
            b"https",
            b"host",
        ],
        "identity_strip" => &[
            b"\n",
            b": ",
            b"x-forwarded-user",
            b"X-Forwarded-Groups",
            b"x_forwarded_email",
            b"X-DOORWARD-ASSERTION",
            b"x-forwarded-idp",
            b"x-legacy-auth",
            b"remote-user",
            b"Remote_User",
            b"signature",
            b"signature-input",
            b"x-forwarded-access-token",
            b"x-forwarded-users",
            b"-",
            b"_",
            b"mallory",
        ],
        "saml_response" => &[
            b"<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_r\" Version=\"2.0\" IssueInstant=\"2026-01-01T00:00:00Z\" Destination=\"https://sp.fuzz.test/_doorward/saml/acs\">",
            b"</samlp:Response>",
            b"<saml:Issuer>https://idp.fuzz.test/metadata</saml:Issuer>",
            b"<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>",
            b"<saml:Assertion ID=\"_a\" Version=\"2.0\" IssueInstant=\"2026-01-01T00:00:00Z\">",
            b"</saml:Assertion>",
            b"<saml:EncryptedAssertion/>",
            b"<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:Reference URI=\"#_a\"/></ds:SignedInfo></ds:Signature>",
            b"<saml:Subject><saml:NameID>alice</saml:NameID></saml:Subject>",
            b"InResponseTo=\"_request-1\" ",
            b"<!DOCTYPE x [<!ENTITY e \"x\">]>",
            b"<!--c-->",
            b"&e;",
            b"<",
            b">",
            b"\"",
            b"=",
        ],
        "scim_filter" => &[
            b"userName", b"emails", b"name.givenName", b"meta.lastModified", b"members", b"value", b"type",
            b"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", b" eq ", b" ne ", b" co ",
            b" sw ", b" ew ", b" gt ", b" ge ", b" lt ", b" le ", b" pr", b" and ", b" or ", b"not ", b"(", b")",
            b"[", b"]", b"\"", b"\\", b"\"bjensen\"", b"true", b"false", b"null", b"42", b"-1.5e3",
            b"\"2011-05-13T04:42:34Z\"", b".",
        ],
        "scim_patch_path" => &[
            b"emails", b"members", b"name", b"givenName", b"value", b"type", b"display", b".", b"[", b"]",
            b"type eq \"work\"", b"value eq \"2819c223\"", b" and ", b" or ", b"not (", b")", b" pr",
            b"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:", b"employeeNumber", b"manager.value",
            b"urn:ietf:params:scim:schemas:core:2.0:User:", b"\"",
        ],
        "signals_set" => &[
            b"{",
            b"}",
            b",",
            b":",
            b"\"iss\":\"https://tx.fuzz.test\"",
            b"\"aud\":\"https://dw.fuzz.test\"",
            b"\"aud\":[\"x\",\"https://dw.fuzz.test\"]",
            b"\"iat\":1000000",
            b"\"iat\":999999.5",
            b"\"exp\":1",
            b"\"toe\":2000000",
            b"\"jti\":\"j\"",
            b"\"txn\":\"t\"",
            b"\"sub_id\":",
            b"\"subject\":",
            b"{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"a\"}",
            b"{\"format\":\"aliases\",\"identifiers\":[",
            b"{\"format\":\"opaque\",\"id\":\"s\"}",
            b"{\"user\":{\"format\":\"email\",\"email\":\"a@x\"},\"session\":",
            b"\"events\":{",
            b"\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\":{",
            b"\"https://schemas.openid.net/secevent/caep/event-type/credential-change\":{",
            b"\"https://schemas.openid.net/secevent/risc/event-type/account-disabled\":{",
            b"\"https://schemas.openid.net/secevent/ssf/event-type/stream-updated\":{",
            b"\"credential_type\":\"password\",\"change_type\":\"revoke\"",
            b"\"event_timestamp\":1000000",
            b"\"alg\":\"EdDSA\"",
            b"\"alg\":\"none\"",
            b"\"typ\":\"secevent+jwt\"",
            b"eyJhbGciOiJFZERTQSJ9",
            b".",
        ],
        _ => &[],
    }
}

/// One input: up to 16 pieces, each a dictionary token (sometimes with its
/// case flipped or `-` and `_` swapped) or a few random bytes (mostly
/// printable ASCII).
fn input(rng: &mut Rng, dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(17) {
        if !dictionary.is_empty() && rng.below(3) != 0 {
            let token = dictionary[rng.below(dictionary.len())];
            let mutate = rng.below(4);
            out.extend(token.iter().map(|&b| match (mutate, b) {
                (1, b'a'..=b'z') => b.to_ascii_uppercase(),
                (2, b'-') => b'_',
                (2, b'_') => b'-',
                _ => b,
            }));
        } else {
            for _ in 0..rng.below(7) {
                let byte = rng.next().to_le_bytes()[0];
                out.push(if rng.below(4) == 0 { byte } else { 0x20 + byte % 0x5f });
            }
        }
    }
    out
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn run(target: &Target) {
    let (name, body) = *target;
    let seed = env_number("DOORWARD_FUZZ_SEED").unwrap_or(0x646f_6f72_7761_7264);
    let budget = env_number("DOORWARD_FUZZ_SECONDS").map(Duration::from_secs);
    let iterations = env_number("DOORWARD_FUZZ_ITERATIONS").unwrap_or(2000);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
    let started = Instant::now();
    let mut case: u64 = 0;
    loop {
        let done = match budget {
            Some(budget) => started.elapsed() >= budget,
            None => case >= iterations,
        };
        if done {
            break;
        }
        let data = input(&mut rng, dictionary(name));
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            panic!(
                "fuzz target `{name}` failed on case {case} (seed {seed}), input {:?}",
                String::from_utf8_lossy(&data)
            );
        }
        case += 1;
    }
    if budget.is_some() {
        eprintln!("fuzz target `{name}`: {case} inputs in {:?}", started.elapsed());
    }
}

fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

#[test]
fn every_target_has_a_dictionary_and_a_test() {
    for (name, _) in TARGETS {
        assert!(!dictionary(name).is_empty(), "{name}");
    }
    assert_eq!(TARGETS.len(), 12, "a new target needs its #[test] below");
}

#[test]
fn the_fuzz_crate_runs_exactly_these_targets() {
    // scripts/fuzz-smoke.sh runs the fuzz crate's [[bin]]s with libFuzzer
    // and these tests without it: both must mean the same set.
    let manifest = include_str!("../../fuzz/Cargo.toml");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
        .filter(|name| *name != "doorward-fuzz")
        .collect();
    let ours: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(bins, ours);
}

#[test]
fn path_normalize() {
    run(target("path_normalize"));
}

#[test]
fn redirect_and_cookies() {
    run(target("redirect_and_cookies"));
}

#[test]
fn claims() {
    run(target("claims"));
}

#[test]
fn config() {
    run(target("config"));
}

#[test]
fn tokens() {
    run(target("tokens"));
}

#[test]
fn host() {
    run(target("host"));
}

#[test]
fn forwarding() {
    run(target("forwarding"));
}

#[test]
fn identity_strip() {
    run(target("identity_strip"));
}

#[test]
fn saml_response() {
    run(target("saml_response"));
}

#[test]
fn scim_filter() {
    run(target("scim_filter"));
}

#[test]
fn scim_patch_path() {
    run(target("scim_patch_path"));
}

#[test]
fn signals_set() {
    run(target("signals_set"));
}
