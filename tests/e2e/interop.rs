//! Interoperability: what doorward signs, checked by libraries doorward did
//! not write, the way an upstream app would check it. PyJWT verifies the
//! identity assertion against the published JWKS; `http_message_signatures`
//! verifies the RFC 9421 signature on the request as the upstream received
//! it. The verifiers are tests/peers/python, installed by scripts/test.sh.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::idp::Browser;
use crate::scenario::{Options, Scenario};
use crate::support::Seen;

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/python");

/// The venv's Python (made by scripts/test.sh); a failure, never a skip,
/// when it is missing.
fn python() -> PathBuf {
    let python = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python"));
    assert!(
        python.exists(),
        "the Python test peer is not installed ({} is missing): run scripts/test.sh \
         (it makes the venv from tests/peers/python/requirements.txt)",
        python.display()
    );
    python
}

/// How a verifier run ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exit 0: the verified content, as JSON.
    fn verified(&self) -> Value {
        assert_eq!(self.code, Some(0), "the verifier refused: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Exit 1 (does not verify, as opposed to 2, unusable input), for `reason`.
    fn refused(&self, what: &str, reason: &str) {
        assert_eq!(self.code, Some(1), "{what}: expected a refusal: {self:?}");
        assert!(self.stderr.contains(reason), "{what}: expected {reason}: {self:?}");
    }
}

/// Runs a verifier script with `args` and `stdin`, off the async runtime
/// (doorward, on that runtime, serves the JWKS it fetches); killed after 30 s.
async fn run(script: &str, args: Vec<String>, stdin: String) -> Run {
    let python = python();
    let script = format!("{PEER}/{script}");
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(&script)
            .args(&args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} {script}: {e}", python.display()));
        let mut input = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(stdin.as_bytes());
        });
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("stderr")));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{script} {args:?} did not finish in 30 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = writer.join();
        Run {
            code: status.code(),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    })
    .await
    .expect("verifier runner")
}

/// verify_assertion.py: PyJWT with `PyJWKClient` on doorward's JWKS URL.
async fn verify_assertion(s: &Scenario, issuer: &str, audience: &str, token: &str) -> Run {
    let jwks_url = s.url("/_doorward/jwks.json");
    let args = [
        "--jwks-url",
        &jwks_url,
        "--issuer",
        issuer,
        "--audience",
        audience,
        token,
    ];
    run("verify_assertion.py", args.map(str::to_string).to_vec(), String::new()).await
}

/// verify_http_signature.py on a received request.
async fn verify_signature(request: &Value) -> Run {
    run("verify_http_signature.py", Vec::new(), request.to_string()).await
}

/// How verify_http_signature.py says the cryptographic check failed.
const MISMATCH: &str = "InvalidSignature: the signature does not match the signature base";

/// Every component doorward is expected to sign for a logged-in user.
const COVERED: [&str; 8] = [
    "@method",
    "@authority",
    "@path",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-doorward-assertion",
    "x-request-id",
];

/// The verifier's input for what the upstream received: the URL is
/// `http://` + the Host it got + the request target it got.
fn received(seen: &Seen, jwks: &Value) -> Value {
    let host = seen.header("host").expect("the upstream got a Host header");
    json!({
        "method": seen.method,
        "url": format!("http://{host}{}", seen.target),
        "headers": seen.headers,
        "jwks": jwks,
        "label": "doorward",
        "require": COVERED,
        "max_age": 120,
    })
}

/// `request` with header `name` set to `value` (or removed, for None).
fn with_header(request: &Value, name: &str, value: Option<&str>) -> Value {
    let mut request = request.clone();
    let headers = request["headers"].as_array_mut().expect("headers");
    headers.retain(|pair| !pair[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)));
    if let Some(value) = value {
        headers.push(json!([name, value]));
    }
    request
}

fn with(request: &Value, field: &str, value: Value) -> Value {
    let mut request = request.clone();
    request[field] = value;
    request
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

async fn jwks(s: &Scenario) -> Value {
    let page = Browser::default().get(&s.url("/_doorward/jwks.json")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()
}

/// Logs alice in, then GETs `target`; what the upstream received.
async fn alice_gets(s: &Scenario, target: &str) -> (Browser, Seen) {
    let mut browser = s.logged_in("alice", "/").await;
    let page = browser.get(&s.url(target)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = s.upstream.last();
    assert_eq!(seen.target, target);
    (browser, seen)
}

#[tokio::test]
async fn pyjwt_verifies_the_assertion_against_the_published_jwks() {
    let s = Scenario::start(Options::default()).await;
    let (_browser, seen) = alice_gets(&s, "/reports/q3?tab=1").await;
    let token = seen.header("x-doorward-assertion").expect("an assertion").to_string();
    let jwks = jwks(&s).await;
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_string();
    let header = b64_json(token.split('.').next().expect("header"));
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}));

    let claims = verify_assertion(&s, &s.base, "app", &token).await.verified();
    assert_eq!(claims["iss"], s.base.as_str());
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["user"], "alice@example.com");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], json!(["engineers", "staff"]));
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 60, "assertion_ttl");
    assert_eq!(claims["nbf"], claims["iat"]);

    verify_assertion(&s, &s.base, "other", &token)
        .await
        .refused("another audience", "InvalidAudienceError");
    verify_assertion(&s, "http://127.0.0.1:9", "app", &token)
        .await
        .refused("another issuer", "InvalidIssuerError");

    // The payload altered (alice adds herself to admins): the signature no
    // longer matches.
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged_claims = b64_json(parts[1]);
    forged_claims["groups"] = json!(["engineers", "staff", "admins"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
        parts[2]
    );
    verify_assertion(&s, &s.base, "app", &forged)
        .await
        .refused("altered payload", "InvalidSignatureError");

    // Signed by a key doorward does not publish, claiming doorward's kid, and
    // under a kid of its own.
    let other = doorward::assertion::keys::SigningKey::generate();
    for claimed_kid in [kid.as_str(), other.kid()] {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": claimed_kid}).to_string()),
            parts[1]
        );
        let foreign = format!("{input}.{}", URL_SAFE_NO_PAD.encode(other.sign(input.as_bytes())));
        let reason = if claimed_kid == kid {
            "InvalidSignatureError"
        } else {
            "PyJWKClientError"
        };
        verify_assertion(&s, &s.base, "app", &foreign)
            .await
            .refused("foreign key", reason);
    }
}

#[tokio::test]
async fn the_http_message_signature_verifies_with_an_rfc_9421_library() {
    let s = Scenario::start(Options {
        headers: "http_message_signatures = true".into(),
        ..Options::default()
    })
    .await;
    let (mut browser, seen) = alice_gets(&s, "/reports/q3?tab=a%20b").await;
    let jwks = jwks(&s).await;
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid");
    let host = seen.header("host").expect("host").to_string();
    let request = received(&seen, &jwks);

    let verified = verify_signature(&request).await.verified();
    assert_eq!(verified["label"], "doorward");
    assert_eq!(verified["parameters"]["keyid"], kid);
    assert_eq!(verified["parameters"]["alg"], "ed25519");
    let covered = &verified["covered"];
    assert_eq!(covered["@method"], "GET");
    assert_eq!(covered["@authority"], host.to_ascii_lowercase());
    assert_eq!(covered["@path"], "/reports/q3", "the path without the query");
    assert_eq!(covered["@query"], "?tab=a%20b");
    let params = &verified["parameters"];
    assert!(params["nonce"].as_str().is_some_and(|n| n.len() >= 16), "{params}");
    assert_eq!(
        params["expires"].as_i64().expect("expires") - params["created"].as_i64().expect("created"),
        60
    );
    assert_eq!(covered["x-forwarded-user"], "alice@example.com");
    assert_eq!(covered["x-forwarded-groups"], "engineers,staff");
    assert_eq!(
        covered["x-doorward-assertion"],
        seen.header("x-doorward-assertion").expect("assertion")
    );
    assert_eq!(
        covered["x-request-id"],
        seen.header("x-request-id").expect("request id")
    );

    let url = |path: &str| json!(format!("http://{host}{path}"));
    let port = host.rsplit(':').next().expect("port").parse::<u16>().expect("port");
    let mut other_jwks = jwks.clone();
    other_jwks["keys"][0]["x"] = doorward::assertion::keys::SigningKey::generate().public_jwk()["x"].clone();
    let tampered = [
        (
            "x-forwarded-user changed",
            with_header(&request, "x-forwarded-user", Some("mallory@example.com")),
        ),
        (
            "a group added",
            with_header(&request, "x-forwarded-groups", Some("engineers,staff,admins")),
        ),
        (
            "another assertion",
            with_header(&request, "x-doorward-assertion", Some("e30.e30.AAAA")),
        ),
        ("another path", with(&request, "url", url("/reports/q4?tab=a%20b"))),
        ("another query", with(&request, "url", url("/reports/q3?tab=admin"))),
        ("another method", with(&request, "method", json!("POST"))),
        (
            "another authority",
            with(
                &request,
                "url",
                json!(format!("http://127.0.0.1:{}/reports/q3?tab=a%20b", port ^ 1)),
            ),
        ),
        ("another key under the same kid", with(&request, "jwks", other_jwks)),
    ];
    for (what, request) in &tampered {
        verify_signature(request).await.refused(what, MISMATCH);
    }
    verify_signature(&with_header(&request, "signature", None))
        .await
        .refused("no Signature header", "Expected \"Signature\" header field");

    // The headers of another request (same user, same session) replayed on
    // this one: the signature is bound to the path and the request id.
    let page = browser.get(&s.url("/admin/delete-everything")).await;
    assert_eq!(page.status, 200);
    let second = s.upstream.last();
    let mut replayed = request.clone();
    for name in ["signature", "signature-input"] {
        replayed = with_header(&replayed, name, second.header(name));
    }
    verify_signature(&replayed)
        .await
        .refused("another request's signature", MISMATCH);
    // ...while that request, as received, verifies.
    verify_signature(&received(&second, &jwks)).await.verified();

    // A body: its digest is signed, so the headers cannot carry another.
    let relay = url::Url::parse(&s.url("/relay")).expect("url");
    let cookie = format!("doorward={}", browser.cookie("doorward").expect("session").value);
    let posted = crate::idp::raw_request(
        "POST",
        &relay,
        &[("cookie", &cookie), ("content-type", "text/plain")],
        bytes::Bytes::from_static(b"transfer 10 to bob"),
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let sent = s.upstream.last();
    assert_eq!(sent.body, "transfer 10 to bob");
    let with_body = with(&received(&sent, &jwks), "body", json!(sent.body));
    verify_signature(&with_body).await.verified();
    verify_signature(&with(&with_body, "body", json!("transfer 10000 to mallory")))
        .await
        .refused("another body", "content-digest does not match the body");

    // The client's Host (kept, preserve_host) in capitals: the upstream gets
    // the canonical (lower-case) host doorward routed by.
    let seen = via_host(&s, &browser, "App.Test").await;
    assert_eq!(seen.header("host"), Some("app.test"));
    let verified = verify_signature(&received(&seen, &jwks)).await.verified();
    assert_eq!(verified["covered"]["@authority"], "app.test");
}

/// GET /via-host with `Host: host` and the browser's session, raw, since
/// the clients here write the Host from the URL; what the upstream got.
async fn via_host(s: &Scenario, browser: &Browser, host: &str) -> Seen {
    let cookie = &browser.cookie("doorward").expect("session cookie").value;
    let request =
        format!("GET /via-host HTTP/1.1\r\nHost: {host}\r\nCookie: doorward={cookie}\r\nConnection: close\r\n\r\n");
    let response = crate::support::raw(s._proxy.addr, &request).await;
    assert_eq!(response.status, 200, "{}", response.head);
    let seen = s.upstream.last();
    assert_eq!(seen.target, "/via-host");
    seen
}

/// RFC 9421 2.2.3: @authority is normalised per RFC 9110 4.2.3, the host
/// lower-cased and the scheme's default port left out: for `Host:
/// App.Test:80` the upstream gets `app.test:80` and both sides sign
/// `app.test`.
#[tokio::test]
async fn the_signed_authority_leaves_out_the_default_port() {
    let s = Scenario::start(Options {
        headers: "http_message_signatures = true".into(),
        ..Options::default()
    })
    .await;
    let (browser, _) = alice_gets(&s, "/x").await;
    let jwks = jwks(&s).await;
    let seen = via_host(&s, &browser, "App.Test:80").await;
    assert_eq!(seen.header("host"), Some("app.test:80"));
    let verified = verify_signature(&received(&seen, &jwks)).await.verified();
    assert_eq!(verified["covered"]["@authority"], "app.test");
}

#[tokio::test]
async fn p256_keys_make_es256_assertions_and_ecdsa_signatures_that_verify() {
    let key = doorward::assertion::keys::SigningKey::p256(
        p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("scalar"),
    );
    let mut pem = tempfile::NamedTempFile::new().expect("temp key file");
    pem.write_all(key.to_pem().expect("pem").as_bytes()).expect("write key");
    let s = Scenario::start(Options {
        headers: format!(
            "signing_keys = [\"{}\"]\nhttp_message_signatures = true",
            pem.path().display()
        ),
        ..Options::default()
    })
    .await;
    let (_browser, seen) = alice_gets(&s, "/reports/q3").await;
    let jwks = jwks(&s).await;
    assert_eq!(jwks["keys"][0]["kid"], key.kid());
    assert_eq!(jwks["keys"][0]["alg"], "ES256");

    let token = seen.header("x-doorward-assertion").expect("an assertion");
    assert_eq!(b64_json(token.split('.').next().expect("header"))["alg"], "ES256");
    let claims = verify_assertion(&s, &s.base, "app", token).await.verified();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], json!(["engineers", "staff"]));

    let request = received(&seen, &jwks);
    let verified = verify_signature(&request).await.verified();
    assert_eq!(verified["parameters"]["alg"], "ecdsa-p256-sha256");
    assert_eq!(verified["covered"]["x-forwarded-user"], "alice@example.com");
    verify_signature(&with_header(&request, "x-forwarded-user", Some("mallory@example.com")))
        .await
        .refused("x-forwarded-user changed", MISMATCH);
}
