//! In-process micro-benchmarks for the targets that are not about the
//! network: identity mapping for a 250-group user, adding identity headers
//! with a cached assertion, and session lookups with 100,000 sessions in
//! the store (latency, and memory per cached session).
//!
//! cargo run --release --example bench_internals

use std::sync::Arc;
use std::time::{Duration, Instant};

use doorward::assertion::keys::SigningKey;
use doorward::assertion::{AssertionCache, AssertionSigner};
use doorward::auth::view::{ViewBuilder, Views};
use doorward::clock::Clock;
use doorward::config::identity::IdentityConfig;
use doorward::identity::engine::Policy;
use doorward::identity::Claims;
use doorward::identity::IdentityEngine;
use doorward::identity_headers::IdentityHeaders;
use doorward::keyring::KeyRing;
use doorward::login::{LoginResult, Tokens};
use doorward::secret::SecretString;
use doorward::session::{cookies::CookieSettings, DeriveFn, SessionManager, SessionSettings};
use doorward::store::{Store, StoreOptions};
use serde_json::json;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn report(name: &str, samples: &mut [Duration], target: Option<Duration>) {
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p50 = percentile(samples, 0.5);
    let p99 = percentile(samples, 0.99);
    let verdict = match target {
        Some(t) if p99 <= t => format!("PASS (p99 <= {t:?})"),
        Some(t) => format!("MISS (p99 > {t:?})"),
        None => String::new(),
    };
    println!("{name:<48} mean {mean:>10.2?}  p50 {p50:>10.2?}  p99 {p99:>10.2?}  {verdict}");
}

fn claims_with_groups(n: usize) -> Claims {
    let groups: Vec<String> = (0..n).map(|i| format!("team-{i:03} ünïcode, \"q\"")).collect();
    json!({"sub": "user-1", "email": "user1@example.com", "preferred_username": "user1", "groups": groups,
           "roles": ["TemplateAuthor"], "organizations": ["product"]})
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn policy() -> Policy {
    let mapping: Vec<String> = (0..250)
        .step_by(2)
        .map(|i| format!("\"team-{i:03} ünïcode, \\\"q\\\"\" = [\"app-{i}\", \"staff\"]"))
        .collect();
    let config = format!(
        "[groups]\nmapping = {{ {} }}\nregex_filter = \"^(app-|team-|staff)\"\ndefault = [\"end-users\"]\n\
         [roles]\nmapping = {{ TemplateAuthor = [\"template-admin\", \"user-admin\"] }}\nfrom_groups = [\"staff\"]\n\
         rank = [\"template-admin\", \"staff\"]\n[orgs]\nmapping = {{ product = \"product-org\" }}\ndefault = \"main\"\n",
        mapping.join(", ")
    );
    let config: IdentityConfig = toml::from_str(&config).expect("identity config");
    Policy::compile(&config).expect("policy")
}

fn bench_mapping() {
    let policy = policy();
    let claims = claims_with_groups(250);
    let out = policy.compute(&claims, false);
    println!(
        "250-group user -> {} groups, {} roles",
        out.identity.groups.len(),
        out.identity.roles.len()
    );
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let start = Instant::now();
        std::hint::black_box(policy.compute(std::hint::black_box(&claims), false));
        samples.push(start.elapsed());
    }
    report(
        "map a 250-group user (login/refresh path)",
        &mut samples,
        Some(Duration::from_micros(50)),
    );
}

fn bench_headers() {
    let headers = IdentityHeaders::from_config(&doorward::config::HeaderNames::default());
    let policy = policy();
    let outcome = policy.compute(&claims_with_groups(250), false);
    let encoded = headers.encode(&outcome.identity);
    let signer = AssertionSigner::new(
        vec![SigningKey::generate()],
        "https://dw.test".into(),
        Duration::from_secs(60),
        "x-doorward-assertion",
    )
    .expect("signer");
    let cache = AssertionCache::default();
    let now = Clock::system().now();
    let name = http::HeaderName::from_static("x-doorward-assertion");
    let mut samples = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let mut map = http::HeaderMap::with_capacity(16);
        map.insert("host", http::HeaderValue::from_static("app.example.com"));
        map.insert("x-forwarded-user", http::HeaderValue::from_static("mallory"));
        let start = Instant::now();
        headers.strip_incoming(&mut map);
        doorward::identity_headers::set(&mut map, &encoded);
        if let Some(assertion) = cache.get(0, &signer, &outcome.identity, "app", now) {
            map.insert(name.clone(), assertion);
        }
        samples.push(start.elapsed());
        std::hint::black_box(map);
    }
    report(
        "strip + set headers + cached assertion (250 groups)",
        &mut samples,
        Some(Duration::from_micros(5)),
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The store to measure: `STORE_URL` (e.g. a postgres:// URL, with the
/// password in `STORE_PASSWORD`) or an SQLite file in a temp dir.
async fn open_store(dir: &tempfile::TempDir) -> Store {
    let url = std::env::var("STORE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let options = StoreOptions {
        password: std::env::var("STORE_PASSWORD").ok().map(SecretString::new),
        max_connections: 8,
    };
    Store::open(&url, &options).await.expect("store")
}

async fn bench_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let backend = if store.is_shared() { "PostgreSQL" } else { "SQLite" };
    println!("store: {backend}");
    let keys = KeyRing::new(&[SecretString::new("bench-session-key-0123456789abcdef0123456789".into())]).expect("keys");
    let views = manager_views();
    let settings = SessionSettings {
        cookie_name: "doorward".into(),
        cookie: CookieSettings {
            secure: false,
            domain: None,
        },
        idle_timeout: Duration::from_secs(8 * 3600),
        absolute_timeout: Duration::from_secs(7 * 24 * 3600),
        cache_capacity: 200_000,
        cache_max_bytes: 1 << 30,
        pass_tokens: false,
    };
    let store_is_shared = store.is_shared();
    let manager = SessionManager::new(store, keys, settings, views, Clock::system());
    const N: usize = 100_000;
    // Logins arrive concurrently: 16 at a time, each writing its session
    // (one transaction, durable on commit), as a burst of logins would.
    const CONCURRENT: usize = 16;
    let started = Instant::now();
    let mut cookies = Vec::with_capacity(N);
    for batch in (0..N).collect::<Vec<_>>().chunks(CONCURRENT) {
        let writes = batch.iter().map(|&i| manager.create(login_of(i), None));
        for created in futures_util::future::join_all(writes).await {
            cookies.push(created.expect("create").0);
        }
    }
    let took = started.elapsed();
    println!(
        "created {N} sessions in {took:.1?}: {:.0} session writes/s, {CONCURRENT} at a time (the store's part of a login)",
        N as f64 / took.as_secs_f64()
    );

    // A restarted doorward: the cache is cold, every lookup reads the store.
    let cold = Arc::new(SessionManager::new(
        open_store(&dir).await,
        KeyRing::new(&[SecretString::new("bench-session-key-0123456789abcdef0123456789".into())]).expect("keys"),
        manager.settings.clone(),
        manager_views(),
        Clock::system(),
    ));
    // A shared store's sessions are cached once its notices are followed.
    cold.follow_store();
    for _ in 0..200 {
        if !cold.reading_through() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(manager);
    let before = rss_kib();
    let mut samples = time_lookups(&cold, &cookies).await;
    let after = rss_kib();
    // The targets: 1 ms on the embedded file, 2 ms over the network.
    let target = Duration::from_millis(if store_is_shared { 2 } else { 1 });
    report(
        &format!("session lookup, cold ({backend}, 100k sessions)"),
        &mut samples,
        Some(target),
    );
    let mut samples = time_lookups(&cold, &cookies).await;
    report(
        "session lookup, cached (cookie open + moka)",
        &mut samples,
        Some(Duration::from_millis(1)),
    );
    // Where a cached lookup's time goes: opening the sealed cookie alone.
    let keys = KeyRing::new(&[SecretString::new("bench-session-key-0123456789abcdef0123456789".into())]).expect("keys");
    let mut samples = Vec::with_capacity(N);
    for sealed in &cookies {
        let start = Instant::now();
        let id = keys.open_cookie("doorward", sealed).expect("opens");
        std::hint::black_box(doorward::session::SessionId::parse(&id).map(|id| id.key()));
        samples.push(start.elapsed());
    }
    report("  of which: open the sealed cookie + hash the id", &mut samples, None);
    println!(
        "memory per cached session: {:.0} bytes (RSS +{} KiB for {N} sessions)",
        (after.saturating_sub(before) * 1024) as f64 / N as f64,
        after.saturating_sub(before)
    );
}

/// The login of user `i`: three groups, tokens, an IdP session.
fn login_of(i: usize) -> LoginResult {
    let merged = json!({"sub": format!("user-{i}"), "email": format!("user{i}@example.com"),
                        "preferred_username": format!("user{i}"), "groups": ["engineers", "staff", "on-call"]})
    .as_object()
    .cloned()
    .unwrap_or_default();
    LoginResult {
        provider: "idp".into(),
        issuer: "https://idp.example.com".into(),
        subject: format!("user-{i}"),
        idp_session: Some(format!("sid-{i}")),
        logout_hint: None,
        idp_session_end: None,
        claims: json!({"merged": merged.clone()}),
        merged,
        tokens: Tokens {
            access_token: Some("a".repeat(40)),
            refresh_token: Some("r".repeat(40)),
            id_token: None,
            expires_at: Some(Clock::system().now() + 3600),
        },
        authentication: Default::default(),
    }
}

/// Looks every session up by its cookie, timing each lookup.
async fn time_lookups(manager: &SessionManager<Views>, cookies: &[String]) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(cookies.len());
    for sealed in cookies {
        let mut headers = http::HeaderMap::new();
        let cookie = http::HeaderValue::from_str(&format!("doorward={sealed}")).expect("cookie");
        headers.insert("cookie", cookie);
        let start = Instant::now();
        let found = manager.from_request(&headers).await;
        samples.push(start.elapsed());
        assert!(matches!(found, Ok(Some(_))));
    }
    samples
}

fn manager_views() -> DeriveFn<Views> {
    let config = doorward::config::parse_str(
        "[[route]]\nname = \"app\"\nupstream = \"http://127.0.0.1:1\"\n",
        "bench",
    )
    .expect("config");
    let engine = Arc::new(IdentityEngine::from_config(&config).expect("engine"));
    let views = ViewBuilder::new(
        engine,
        IdentityHeaders::from_config(&doorward::config::HeaderNames::default()),
    );
    Arc::new(move |claims, origin, facts| views.build(claims, origin, facts))
}

/// `bench_internals sessions` measures the session store alone (what
/// bench/store.sh runs per backend); without an argument, everything.
fn main() {
    if std::env::args().nth(1).as_deref() != Some("sessions") {
        bench_mapping();
        bench_headers();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench_sessions());
}
