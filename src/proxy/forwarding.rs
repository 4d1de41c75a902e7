//! Header rules for a hop: hop-by-hop removal (RFC 9110 §7.6.1) and the
//! X-Forwarded-* family, believed only from trusted proxies.

use std::net::IpAddr;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::identity_headers::FoldedNames;

/// Always hop-by-hop, whatever `Connection` lists. Names are constants:
/// looking a header up by `&str` parses the name on every call.
const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
    // Part of an h2c upgrade, which never reaches the upstream.
    HeaderName::from_static("http2-settings"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers. With `upgrade` set (a WebSocket or other
/// HTTP/1.1 upgrade being proxied), `Upgrade` is kept and `Connection`
/// becomes exactly `upgrade`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    let kept_upgrade = if upgrade { headers.get(UPGRADE).cloned() } else { None };
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(protocol) = kept_upgrade {
        headers.insert(UPGRADE, protocol);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Is this request asking to switch protocols (HTTP/1.1 upgrade)?
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Who may tell doorward the original client address, scheme and host.
#[derive(Debug, Clone)]
pub struct Forwarding {
    trusted: Vec<IpNet>,
    /// X-Forwarded-* and friends, in every spelling, dropped from anyone
    /// untrusted.
    client_claims: FoldedNames,
    /// Dropped from everyone, trusted proxies too: they rewrite the path
    /// after doorward decided on it, so the upstream would serve another
    /// path than the one doorward authorized.
    path_rewrites: FoldedNames,
}

const PATH_REWRITE_NAMES: &[&str] = &[
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-path",
];

const FORWARDED_NAMES: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-uri",
    "x-forwarded-prefix",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-real-ip",
    "forwarded",
];

impl Forwarding {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self {
            trusted,
            client_claims: FoldedNames::new(FORWARDED_NAMES.iter().copied()),
            path_rewrites: FoldedNames::new(PATH_REWRITE_NAMES.iter().copied()),
        }
    }

    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// Sets X-Forwarded-For/-Proto/-Host for the upstream. From an untrusted
    /// peer every client-supplied forwarding header is dropped first; from a
    /// trusted one the chain is extended and its proto/host kept. `host` is
    /// the canonical host the request was routed by.
    pub fn apply(&self, headers: &mut HeaderMap, peer: IpAddr, tls: bool, host: Option<&HeaderValue>) {
        let peer = peer.to_canonical();
        let trusted = self.is_trusted(peer);
        self.path_rewrites.strip(headers);
        if !trusted {
            self.client_claims.strip(headers);
        }
        let mut chain = if trusted { prior_chain(headers) } else { Vec::new() };
        if !chain.is_empty() {
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(peer.to_string().as_bytes());
        match HeaderValue::from_bytes(&chain) {
            Ok(value) => {
                headers.insert(X_FORWARDED_FOR, value);
            }
            // Cannot happen (valid values joined by ", "); if it did, no
            // client-supplied line may be left standing.
            Err(_) => {
                headers.remove(X_FORWARDED_FOR);
            }
        }
        if !trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
            let proto = if tls { "https" } else { "http" };
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        }
        if !trusted || !headers.contains_key(&X_FORWARDED_HOST) {
            match host {
                Some(host) => {
                    headers.insert(X_FORWARDED_HOST, host.clone());
                }
                None => {
                    headers.remove(X_FORWARDED_HOST);
                }
            }
        }
    }
}

impl Forwarding {
    /// The client's address: the peer, or behind trusted proxies the
    /// nearest address in X-Forwarded-For that is not one of them (read
    /// from the right, where each trusted hop appended what it saw; what
    /// stands further left the client may have written itself). A hop that
    /// is not an address ends the walk at the last one known.
    pub fn client_address(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.is_trusted(client) {
            return client;
        }
        let chain = prior_chain(headers);
        for hop in chain.rsplit(|&b| b == b',') {
            let Some(hop) = std::str::from_utf8(hop).ok().and_then(|h| hop_address(h.trim())) else {
                break;
            };
            client = hop.to_canonical();
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }
}

/// One X-Forwarded-For hop's address; some proxies add the port
/// (`203.0.113.9:4711`, `[2001:db8::1]:4711`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// The X-Forwarded-For chain a trusted proxy reported: every line, in
/// order, byte for byte. Reading only the first line let a client's own
/// line stand in for the real one behind a proxy that appends a line of
/// its own (HAProxy's `option forwardfor`, whose docs say to use the last
/// occurrence), and a hop that is not visible ASCII made the whole chain
/// vanish: either way the client's address went missing upstream.
fn prior_chain(headers: &HeaderMap) -> Vec<u8> {
    let mut chain = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() {
            continue;
        }
        if !chain.is_empty() {
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(value);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn the_client_address_is_the_nearest_untrusted_hop() {
        let fwd = Forwarding::new(vec!["10.0.0.0/8".parse().expect("net")]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let chain = map(&[
            ("x-forwarded-for", "198.51.100.7, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(fwd.client_address(&chain, ip("10.0.0.1")), ip("203.0.113.9"));
        assert_eq!(
            fwd.client_address(&chain, ip("192.0.2.1")),
            ip("192.0.2.1"),
            "an untrusted peer's chain is not read"
        );
        let all_trusted = map(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(fwd.client_address(&all_trusted, ip("10.0.0.1")), ip("10.0.0.3"));
        let garbled = map(&[("x-forwarded-for", "203.0.113.9, not-an-address, 10.0.0.2")]);
        assert_eq!(fwd.client_address(&garbled, ip("10.0.0.1")), ip("10.0.0.2"));
        assert_eq!(fwd.client_address(&HeaderMap::new(), ip("10.0.0.1")), ip("10.0.0.1"));
        let ported = map(&[("x-forwarded-for", "[2001:db8::7]:4711, 203.0.113.9:4711")]);
        assert_eq!(fwd.client_address(&ported, ip("10.0.0.1")), ip("203.0.113.9"));
        assert_eq!(
            fwd.client_address(&HeaderMap::new(), ip("::ffff:10.0.0.1")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn upgrades_keep_upgrade_header() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(wants_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        assert_eq!(h.get("connection").map(|v| v.as_bytes()), Some(&b"upgrade"[..]));
    }

    #[test]
    fn untrusted_peers_cannot_claim_forwarding() {
        let fwd = Forwarding::new(vec![]);
        let mut h = map(&[
            ("host", "app.example.com"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x_forwarded_host", "evil.com"),
            ("x-forwarded-proto", "https"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        let host = HeaderValue::from_static("app.example.com");
        fwd.apply(&mut h, "10.1.1.1".parse().expect("ip"), false, Some(&host));
        assert_eq!(h.get("x-forwarded-for").map(|v| v.as_bytes()), Some(&b"10.1.1.1"[..]));
        assert_eq!(h.get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"http"[..]));
        assert_eq!(
            h.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"app.example.com"[..])
        );
        assert!(!h.contains_key("x_forwarded_host") && !h.contains_key("x-real-ip"));
    }

    #[test]
    fn trusted_peers_extend_the_chain() {
        let fwd = Forwarding::new(vec!["10.0.0.0/8".parse().expect("net")]);
        let mut h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-original-url", "/admin"),
            ("X_Rewrite_URL", "/admin"),
            ("x-forwarded-prefix", "/admin"),
        ]);
        fwd.apply(&mut h, "::ffff:10.1.1.1".parse().expect("ip"), false, None);
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"1.2.3.4, 10.1.1.1"[..])
        );
        assert_eq!(h.get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"https"[..]));
        for name in ["x-original-url", "x_rewrite_url", "x-forwarded-prefix"] {
            assert!(!h.contains_key(name), "{name} survived from a trusted proxy");
        }
    }

    #[test]
    fn trusted_peers_keep_every_hop_of_every_line() {
        let fwd = Forwarding::new(vec!["10.0.0.0/8".parse().expect("net")]);
        let peer = "10.1.1.1".parse().expect("ip");
        // A client's own line first, then the one its proxy appended.
        let mut h = map(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.9")]);
        fwd.apply(&mut h, peer, false, None);
        let chain: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
        assert_eq!(chain, ["6.6.6.6, 203.0.113.9, 10.1.1.1"]);
        // A hop that is not visible ASCII does not erase the others.
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\x8a, 203.0.113.9").expect("value"),
        );
        h.append(X_FORWARDED_FOR, HeaderValue::from_static(" "));
        fwd.apply(&mut h, peer, false, None);
        assert_eq!(
            h.get("x-forwarded-for").map(HeaderValue::as_bytes),
            Some(&b"\x8a, 203.0.113.9, 10.1.1.1"[..])
        );
    }
}
