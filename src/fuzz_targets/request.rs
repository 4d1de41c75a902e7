//! Targets for what doorward reads from a request head before anything
//! else: the Host, the forwarding headers, and the identity headers it
//! must strip.

use std::net::IpAddr;

use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::config::HeaderNames;
use crate::identity_headers::IdentityHeaders;
use crate::proxy::forwarding::Forwarding;
use crate::proxy::host::{self, request_host, HostError};

/// Header lines from bytes: `name: value` per `\n`-separated line; lines
/// whose name or value is not a valid header are left out (hyper would
/// have refused them).
fn headers_from(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    headers
}

/// How a lenient upstream reads a header name: any case, `_` as `-`.
fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The Host parser: never panics; what it accepts is canonical (lower-case
/// ASCII, no trailing dot, no userinfo, a real port) and a fixed point;
/// `Host` and an absolute-form authority are read alike, and must agree.
pub fn host(data: &[u8]) {
    let parsed = host::parse(data);
    if let Ok(h) = &parsed {
        let name = h.name.as_bytes();
        assert!(!name.is_empty() && h.name.is_ascii(), "{data:?} -> {h:?}");
        assert!(
            !name
                .iter()
                .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace() || b.is_ascii_control() || *b == b'@'),
            "{data:?} -> {h:?}"
        );
        assert!(!h.name.ends_with('.'), "{data:?} -> {h:?}");
        assert_ne!(h.port, Some(0), "{data:?}");
        let value = h.header_value().expect("a canonical host is a header value");
        assert_eq!(
            host::parse(value.as_bytes()).as_ref(),
            Ok(h),
            "not a fixed point: {data:?}"
        );
    }
    let origin_form = Uri::from_static("/");
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, value.clone());
        assert_eq!(request_host(&origin_form, &headers), parsed.clone().map(Some));
        headers.append(HOST, value);
        assert_eq!(request_host(&origin_form, &headers), Err(HostError::Duplicate));
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(absolute) = Uri::try_from(format!("http://{text}/x")) else {
        return;
    };
    let Some(authority) = absolute.authority() else { return };
    let from_uri = host::parse(authority.as_str().as_bytes());
    assert_eq!(request_host(&absolute, &HeaderMap::new()), from_uri.clone().map(Some));
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("app.example.com"));
    let ours = |h: &host::RequestHost| h.name == "app.example.com" && h.port.is_none();
    match (from_uri, request_host(&absolute, &headers)) {
        (Ok(h), Ok(Some(got))) => assert!(ours(&h) && got == h, "{text:?}"),
        (Ok(h), Err(HostError::Mismatch)) => assert!(!ours(&h), "{text:?}"),
        (Err(e), Err(got)) => assert_eq!(e, got, "{text:?}"),
        (uri, both) => panic!("{text:?}: the URI alone gives {uri:?}, with Host {both:?}"),
    }
}

/// Every name a client might claim forwarding facts with.
const CLAIMS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-path",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-real-ip",
    "forwarded",
];

/// Names that rewrite the path after doorward decided on it.
const PATH_REWRITES: &[&str] = &[
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-path",
];

/// X-Forwarded-* handling with arbitrary header bytes (the first byte
/// picks trusted or not, TLS, the peer's address family and whether a
/// host is known): never panics, every header left is a valid value, the
/// peer ends the X-Forwarded-For chain; an untrusted peer's claims are all
/// replaced, a trusted one's hops all kept in order; no path rewrite
/// survives either way.
pub fn forwarding(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let (trusted, tls, v6, mapped, with_host) = (
        options & 1 != 0,
        options & 2 != 0,
        options & 4 != 0,
        options & 8 != 0,
        options & 16 != 0,
    );
    let peer: IpAddr = match (v6, mapped) {
        (true, _) => "2001:db8::7".parse().expect("ip"),
        (false, true) => "::ffff:10.1.2.3".parse().expect("ip"),
        (false, false) => "10.1.2.3".parse().expect("ip"),
    };
    let nets = if trusted {
        vec![
            "10.0.0.0/8".parse().expect("net"),
            "2001:db8::/32".parse().expect("net"),
        ]
    } else {
        Vec::new()
    };
    let host = with_host.then(|| HeaderValue::from_static("app.example.com:8443"));
    let before = headers_from(rest);
    let mut after = before.clone();
    Forwarding::new(nets).apply(&mut after, peer, tls, host.as_ref());

    for (name, value) in &after {
        assert!(HeaderValue::from_bytes(value.as_bytes()).is_ok(), "{name}: {value:?}");
    }
    let peer = peer.to_canonical().to_string();
    let chain: Vec<&HeaderValue> = after.get_all("x-forwarded-for").iter().collect();
    assert_eq!(chain.len(), 1, "{chain:?}");
    let chain = chain[0].as_bytes();
    for name in after.keys() {
        assert!(
            !PATH_REWRITES.contains(&fold(name.as_str()).as_str()),
            "{name} survived"
        );
    }
    if trusted {
        // Every hop the trusted proxies reported, in order, then the peer:
        // a proxy that appends its own line (HAProxy's `forwardfor`) must
        // not lose its hop to a line the client sent first.
        let mut expected: Vec<u8> = Vec::new();
        for prior in before.get_all("x-forwarded-for") {
            let prior = prior.as_bytes().trim_ascii();
            if !prior.is_empty() {
                expected.extend_from_slice(prior);
                expected.extend_from_slice(b", ");
            }
        }
        expected.extend_from_slice(peer.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(chain),
            String::from_utf8_lossy(&expected),
            "{before:?}"
        );
        return;
    }
    assert_eq!(chain, peer.as_bytes());
    let proto = if tls { "https" } else { "http" };
    assert_eq!(
        after.get("x-forwarded-proto").map(HeaderValue::as_bytes),
        Some(proto.as_bytes())
    );
    assert_eq!(after.get("x-forwarded-host"), host.as_ref());
    for name in after.keys() {
        let set_by_doorward = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"].contains(&name.as_str());
        assert!(
            set_by_doorward || !CLAIMS.contains(&fold(name.as_str()).as_str()),
            "{name} from an untrusted peer survived"
        );
    }
    for name in ["x-forwarded-proto", "x-forwarded-host"] {
        assert!(after.get_all(name).iter().count() <= 1, "{name}");
    }
}

/// Identity-header stripping with arbitrary header maps: no header whose
/// name folds (case, `_` for `-`) to one of doorward's survives, and every
/// other header keeps all its values, in order.
pub fn identity_strip(data: &[u8]) {
    let config = HeaderNames {
        strip: vec!["X-Legacy-Auth".into(), "Remote_User".into()],
        ..HeaderNames::default()
    };
    let ours: Vec<String> = config.all().map(fold).collect();
    let before = headers_from(data);
    let mut after = before.clone();
    IdentityHeaders::from_config(&config).strip_incoming(&mut after);
    for name in after.keys() {
        assert!(!ours.contains(&fold(name.as_str())), "{name} survived stripping");
    }
    for name in before.keys() {
        if !ours.contains(&fold(name.as_str())) {
            let kept: Vec<&HeaderValue> = after.get_all(name).iter().collect();
            let sent: Vec<&HeaderValue> = before.get_all(name).iter().collect();
            assert_eq!(kept, sent, "{name} was touched");
        }
    }
}
