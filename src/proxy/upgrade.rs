//! HTTP/1.1 upgrades: only the protocols `[server] allowed_upgrades` names
//! (WebSocket by default), only with a well-formed handshake, and only once
//! the upstream's `101` proves it understood that handshake. Then bytes are
//! copied both ways until either side closes.
//!
//! Attacks this stops: `Upgrade: h2c` smuggling (an upgraded HTTP/2
//! connection to the upstream would carry requests doorward never saw),
//! and an upstream (or something in front of it) answering `101` to a
//! request that did not ask, turning the connection into a raw tunnel.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderName};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

use super::conn_io::BusyGuard;
use super::errors::ProxyError;
use crate::access::Registration;

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
/// RFC 6455 §1.3.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An upgrade the client asked for and may have.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The expected `Sec-WebSocket-Accept`, for WebSocket.
    accept: Option<String>,
}

/// What the client's upgrade request amounts to: `Ok(None)` when it asked
/// for none, or for a protocol not allowed (the request then goes on as a
/// plain one, the `Upgrade` header dropped as hop-by-hop).
pub fn requested(headers: &HeaderMap, allowed: &[String]) -> Result<Option<Upgrade>, ProxyError> {
    if !super::forwarding::wants_upgrade(headers) {
        return Ok(None);
    }
    let Some(protocol) = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().split('/').next().unwrap_or("").to_ascii_lowercase())
    else {
        return Ok(None);
    };
    // h2c is never allowed, whatever the config says.
    if protocol == "h2c" || !allowed.iter().any(|a| a.eq_ignore_ascii_case(&protocol)) {
        return Ok(None);
    }
    if protocol != "websocket" {
        return Ok(Some(Upgrade { accept: None }));
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(ProxyError::BadRequest(
            "a WebSocket upgrade needs one Sec-WebSocket-Key",
        ));
    };
    // RFC 6455 §4.1: the key is 16 random bytes, base64-encoded.
    let decoded = STANDARD
        .decode(key.as_bytes().trim_ascii())
        .map_err(|_| ProxyError::BadRequest("the Sec-WebSocket-Key is not base64"))?;
    if decoded.len() != 16 {
        return Err(ProxyError::BadRequest("the Sec-WebSocket-Key is not 16 bytes"));
    }
    Ok(Some(Upgrade {
        accept: Some(accept_for(key.as_bytes().trim_ascii())),
    }))
}

fn accept_for(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

impl Upgrade {
    /// Checks the upstream's `101` answers this handshake.
    pub fn check_switch(&self, response: &HeaderMap) -> Result<(), ProxyError> {
        if let Some(expected) = &self.accept {
            let ok = response
                .get(SEC_WEBSOCKET_ACCEPT)
                .is_some_and(|got| got.as_bytes().trim_ascii() == expected.as_bytes());
            if !ok {
                return Err(ProxyError::BadUpgrade("Sec-WebSocket-Accept does not match the key"));
            }
        }
        Ok(())
    }
}

/// Joins the client's and the upstream's upgraded connections. `busy` keeps
/// the client connection from counting as idle while the tunnel is open.
/// With a `registration` (an admitted caller), the tunnel is closed on both
/// sides as soon as that admission no longer holds.
pub fn spawn_tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    busy: BusyGuard,
    request_id: String,
    registration: Option<Registration>,
) {
    tokio::spawn(async move {
        let _busy = busy;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(request_id, error = %e, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
        let ended = async {
            match &registration {
                Some(registration) => registration.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            copied = copy => match copied {
                Ok((up, down)) => tracing::debug!(request_id, up, down, "upgraded connection closed"),
                Err(e) => {
                    tracing::debug!(request_id, error = %e, "upgraded connection ended with an error")
                }
            },
            // Both halves are dropped on return: both sides see the close.
            () = ended => tracing::info!(request_id, "upgraded connection closed: its admission ended"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn upgrade_request(protocol: &str, key: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(http::header::UPGRADE, HeaderValue::from_str(protocol).expect("value"));
        if let Some(key) = key {
            h.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static(key));
        }
        h
    }

    #[test]
    fn rfc_6455_example_accept() {
        assert_eq!(accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn only_allowed_well_formed_upgrades_pass() {
        let allowed = ["websocket".to_string()];
        assert!(requested(&upgrade_request("h2c", None), &allowed)
            .expect("ok")
            .is_none());
        let everything = ["websocket".to_string(), "h2c".to_string()];
        assert!(
            requested(&upgrade_request("h2c", None), &everything)
                .expect("ok")
                .is_none(),
            "h2c never, even if listed"
        );
        assert!(requested(&upgrade_request("foo", None), &allowed)
            .expect("ok")
            .is_none());
        assert!(matches!(
            requested(&upgrade_request("websocket", None), &allowed),
            Err(ProxyError::BadRequest(
                "a WebSocket upgrade needs one Sec-WebSocket-Key"
            ))
        ));
        assert!(matches!(
            requested(&upgrade_request("websocket", Some("c2hvcnQ=")), &allowed),
            Err(ProxyError::BadRequest("the Sec-WebSocket-Key is not 16 bytes"))
        ));
        let ok = requested(
            &upgrade_request("WebSocket", Some("dGhlIHNhbXBsZSBub25jZQ==")),
            &allowed,
        )
        .expect("ok")
        .expect("an upgrade");
        let mut response = HeaderMap::new();
        assert!(matches!(ok.check_switch(&response), Err(ProxyError::BadUpgrade(_))));
        response.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("forged"));
        assert!(matches!(ok.check_switch(&response), Err(ProxyError::BadUpgrade(_))));
        response.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(ok.check_switch(&response).is_ok());
    }
}
