//! HTTP Message Signatures (RFC 9421) on the request doorward forwards,
//! label `doorward`, signed with the assertion key (`ed25519` or
//! `ecdsa-p256-sha256`).
//!
//! Covered: `@method`, `@authority`, `@path`, `@query`, every identity
//! header (set even when empty, so a header added downstream breaks the
//! signature), the assertion, `X-Request-Id`, and `content-digest` (RFC
//! 9530) when there is a body; with `created`, `expires` and a `nonce`. A
//! captured set of headers therefore cannot be replayed on another path,
//! query or body, nor after it expires, and an upstream that remembers
//! nonces can refuse a replay of the very same request.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::keys::SigningKey;

pub const LABEL: &str = "doorward";
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");

/// RFC 9421 algorithm name for a key.
fn algorithm(key: &SigningKey) -> &'static str {
    match key {
        SigningKey::Ed25519 { .. } => "ed25519",
        SigningKey::P256 { .. } => "ecdsa-p256-sha256",
    }
}

/// Lower-cased, without the scheme's default port.
fn normalize_authority(authority: &str, https: bool) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = if https { ":443" } else { ":80" };
    match lower.strip_suffix(default) {
        Some(host) if !host.is_empty() => host.to_string(),
        _ => lower,
    }
}

/// `Content-Digest` for a body (RFC 9530 §2, sha-256).
pub fn content_digest(body: &[u8]) -> HeaderValue {
    let digest = STANDARD.encode(Sha256::digest(body));
    HeaderValue::from_str(&format!("sha-256=:{digest}:")).unwrap_or_else(|_| HeaderValue::from_static("sha-256=::"))
}

/// The request as the upstream will receive it.
pub struct Target<'a> {
    pub method: &'a Method,
    pub authority: &'a str,
    /// The scheme the upstream is spoken to with.
    pub https: bool,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// When and how a signature is made.
pub struct Params<'a> {
    pub created: i64,
    pub expires: i64,
    pub nonce: &'a str,
    pub key: &'a SigningKey,
}

/// The signature base (RFC 9421 §2.5) and the `@signature-params` value.
/// Covered headers that are absent are skipped (RFC 9421 cannot cover an
/// absent field); doorward sets every identity header, so none of those is.
pub fn signature_base(
    target: &Target<'_>,
    headers: &HeaderMap,
    covered: &[HeaderName],
    params: &Params<'_>,
) -> (String, String) {
    let mut base = String::with_capacity(512);
    let mut components = vec![
        "\"@method\"".to_string(),
        "\"@authority\"".into(),
        "\"@path\"".into(),
        "\"@query\"".into(),
    ];
    // RFC 9421 §2.2.1: the method as sent; §2.2.3: the authority
    // normalised as RFC 9110 §4.2.3 says (lower case, no default port);
    // §2.2.7: the query with its `?`, just `?` when there is none.
    base.push_str(&format!("\"@method\": {}\n", target.method.as_str()));
    base.push_str(&format!(
        "\"@authority\": {}\n",
        normalize_authority(target.authority, target.https)
    ));
    base.push_str(&format!("\"@path\": {}\n", target.path));
    base.push_str(&format!("\"@query\": ?{}\n", target.query.unwrap_or("")));
    for name in covered.iter().chain(std::iter::once(&CONTENT_DIGEST)) {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        if values.is_empty() && !headers.contains_key(name) {
            continue;
        }
        components.push(format!("\"{}\"", name.as_str()));
        base.push_str(&format!("\"{}\": {}\n", name.as_str(), values.join(", ")));
    }
    let signature_params = format!(
        "({});created={};expires={};nonce=\"{}\";keyid=\"{}\";alg=\"{}\"",
        components.join(" "),
        params.created,
        params.expires,
        params.nonce,
        params.key.kid(),
        algorithm(params.key)
    );
    base.push_str(&format!("\"@signature-params\": {signature_params}"));
    (base, signature_params)
}

/// A fresh nonce: 128 random bits, base64url.
pub fn nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Adds `Signature-Input` and `Signature` to `headers`.
pub fn sign(target: &Target<'_>, headers: &mut HeaderMap, covered: &[HeaderName], params: &Params<'_>) {
    let (base, signature_params) = signature_base(target, headers, covered, params);
    let signature = STANDARD.encode(params.key.sign(base.as_bytes()));
    if let (Ok(input), Ok(signature)) = (
        HeaderValue::from_str(&format!("{LABEL}={signature_params}")),
        HeaderValue::from_str(&format!("{LABEL}=:{signature}:")),
    ) {
        headers.insert("signature-input", input);
        headers.insert("signature", signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_follows_rfc_9421() {
        let key = SigningKey::ed25519(ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-user", HeaderValue::from_static(" alice@example.com "));
        headers.insert("x-forwarded-email", HeaderValue::from_static(""));
        let covered = [
            HeaderName::from_static("x-forwarded-user"),
            HeaderName::from_static("x-forwarded-email"),
            HeaderName::from_static("x-missing"),
        ];
        let target = Target {
            method: &Method::GET,
            authority: "App.Example.com:80",
            https: false,
            path: "/a/b",
            query: Some("x=1"),
        };
        let params = Params {
            created: 1700,
            expires: 1760,
            nonce: "n1",
            key: &key,
        };
        let (base, signature_params) = signature_base(&target, &headers, &covered, &params);
        let want = format!(
            "\"@method\": GET\n\"@authority\": app.example.com\n\"@path\": /a/b\n\"@query\": ?x=1\n\
             \"x-forwarded-user\": alice@example.com\n\"x-forwarded-email\": \n\
             \"@signature-params\": (\"@method\" \"@authority\" \"@path\" \"@query\" \"x-forwarded-user\" \
             \"x-forwarded-email\");created=1700;expires=1760;nonce=\"n1\";keyid=\"{}\";alg=\"ed25519\"",
            key.kid()
        );
        assert_eq!(base, want);
        assert!(signature_params.starts_with("(\"@method\""));
        headers.insert(CONTENT_DIGEST, content_digest(b"{\"hello\": \"world\"}"));
        sign(&target, &mut headers, &covered, &params);
        assert!(headers["signature"].to_str().expect("ascii").starts_with("doorward=:"));
        assert!(headers["signature-input"]
            .to_str()
            .expect("ascii")
            .contains("\"content-digest\""));
        assert_eq!(normalize_authority("[::1]:443", true), "[::1]");
        assert_eq!(normalize_authority("x.test:443", false), "x.test:443");
        assert_eq!(normalize_authority("x.test:8080", false), "x.test:8080");
    }

    #[test]
    fn content_digest_is_rfc_9530() {
        // RFC 9530 appendix B.1's example body and sha-256 digest.
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}\n"),
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
    }
}
