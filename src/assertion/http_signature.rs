//! HTTP Message Signatures (RFC 9421) on the request doorward forwards:
//! `@method`, `@authority`, `@path` and the identity headers, with
//! `created`, so a captured set of headers cannot be replayed on another
//! request. Signed with the assertion key (`ed25519` or
//! `ecdsa-p256-sha256`), label `doorward`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::keys::SigningKey;

pub const LABEL: &str = "doorward";

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

/// The signature base (RFC 9421 §2.5) and the `@signature-params` value.
/// `https` is the scheme of the request as the upstream receives it.
#[allow(clippy::too_many_arguments)]
pub fn signature_base(
    method: &Method,
    authority: &str,
    https: bool,
    path: &str,
    headers: &HeaderMap,
    covered: &[HeaderName],
    created: i64,
    key: &SigningKey,
) -> (String, String) {
    let mut base = String::with_capacity(256);
    let mut components = vec!["\"@method\"".to_string(), "\"@authority\"".into(), "\"@path\"".into()];
    // RFC 9421 §2.2.1: the method as sent; §2.2.3: the authority
    // normalised as RFC 9110 §4.2.3 says (lower case, no default port).
    base.push_str(&format!("\"@method\": {}\n", method.as_str()));
    base.push_str(&format!("\"@authority\": {}\n", normalize_authority(authority, https)));
    base.push_str(&format!("\"@path\": {path}\n"));
    for name in covered {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        if values.is_empty() {
            continue;
        }
        components.push(format!("\"{}\"", name.as_str()));
        base.push_str(&format!("\"{}\": {}\n", name.as_str(), values.join(", ")));
    }
    let params = format!(
        "({});created={created};keyid=\"{}\";alg=\"{}\"",
        components.join(" "),
        key.kid(),
        algorithm(key)
    );
    base.push_str(&format!("\"@signature-params\": {params}"));
    (base, params)
}

/// Adds `Signature-Input` and `Signature` to `headers`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &Method,
    authority: &str,
    https: bool,
    path: &str,
    headers: &mut HeaderMap,
    covered: &[HeaderName],
    created: i64,
    key: &SigningKey,
) {
    let (base, params) = signature_base(method, authority, https, path, headers, covered, created, key);
    let signature = STANDARD.encode(key.sign(base.as_bytes()));
    if let (Ok(input), Ok(signature)) = (
        HeaderValue::from_str(&format!("{LABEL}={params}")),
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
        let covered = [
            HeaderName::from_static("x-forwarded-user"),
            HeaderName::from_static("x-missing"),
        ];
        let (base, params) = signature_base(
            &Method::GET,
            "App.Example.com:80",
            false,
            "/a/b",
            &headers,
            &covered,
            1700,
            &key,
        );
        let want = format!(
            "\"@method\": GET\n\"@authority\": app.example.com\n\"@path\": /a/b\n\"x-forwarded-user\": alice@example.com\n\
             \"@signature-params\": (\"@method\" \"@authority\" \"@path\" \"x-forwarded-user\");created=1700;keyid=\"{}\";alg=\"ed25519\"",
            key.kid()
        );
        assert_eq!(base, want);
        assert!(params.starts_with("(\"@method\""));
        sign(
            &Method::GET,
            "app.example.com",
            false,
            "/a/b",
            &mut headers,
            &covered,
            1700,
            &key,
        );
        assert!(headers["signature"].to_str().expect("ascii").starts_with("doorward=:"));
        assert_eq!(normalize_authority("[::1]:443", true), "[::1]");
        assert_eq!(normalize_authority("x.test:443", false), "x.test:443");
        assert_eq!(normalize_authority("x.test:8080", false), "x.test:8080");
    }
}
