//! ACS validations per second: how many real signed SAML Responses one
//! core checks (base64, no-DTD and assertion-count scans, XML-DSig through
//! libxmlsec1, every assertion rule, attributes to claims). The replay
//! check is a store write and is measured with the store.
//!
//! bench/saml.sh runs it against a response from the pysaml2 test IdP:
//!   cargo run --release --example bench_saml -- IDP_METADATA.xml RESPONSE.b64 [SECONDS]

use std::time::{Duration, Instant};

use doorward::clock::Clock;
use doorward::saml::{SamlProvider, SpUrls};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(metadata), Some(response)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench_saml IDP_METADATA.xml RESPONSE.b64 [SECONDS]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let response = std::fs::read_to_string(response).expect("read the response");
    let response = response.trim();
    let config: doorward::config::SamlProviderConfig = toml::from_str(&format!(
        "name = \"bench\"\nidp_metadata_file = \"{metadata}\"\nallow_unsolicited = true\n"
    ))
    .expect("provider config");
    let tls = doorward::tls::client_config(None).expect("tls");
    let http = doorward::idp_http::IdpHttp::new(tls, Duration::from_secs(2));
    let urls = SpUrls {
        base: "http://127.0.0.1:9",
        prefix: "/_doorward",
    };
    // The clock stands still at the response's issue time for the run.
    let provider = SamlProvider::new(&config, urls, http, Clock::manual_from_now()).expect("provider");
    provider
        .validate_response(response, None)
        .expect("the response validates");
    let started = Instant::now();
    let cpu_before = thread_cpu_seconds();
    let mut done = 0u64;
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let one = Instant::now();
        let login = provider.validate_response(response, None).expect("valid");
        std::hint::black_box(login);
        samples.push(one.elapsed());
        done += 1;
    }
    let cpu = thread_cpu_seconds() - cpu_before;
    samples.sort();
    let rate = done as f64 / started.elapsed().as_secs_f64();
    // Per core: validations per second of this thread's CPU time, which a
    // busy machine does not distort the way wall time is.
    let per_core = done as f64 / cpu.max(0.01);
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    let verdict = if per_core >= 1000.0 { "PASS" } else { "MISS" };
    println!(
        "ACS validation: {per_core:.0}/s per core (CPU time), {rate:.0}/s wall on one thread \
         (p50 {p50:.2?}, p99 {p99:.2?}, {} bytes) target >= 1000/s/core: {verdict}",
        response.len()
    );
}

/// This thread's user + system CPU time, from /proc (clock ticks of 10 ms:
/// fine over a run of seconds).
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
