//! Rewriting a client's request into the one the upstream receives: the
//! hop-by-hop headers go, forwarding headers are set (believed only from
//! trusted proxies), doorward's cookies are removed, the admitted identity
//! and its signed assertion are set, the Host and target become the
//! canonical ones doorward routed by, and (optionally) the whole is signed.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Uri, Version};
use hyper::upgrade::OnUpgrade;

use super::errors::ProxyError;
use super::forwarding::{remove_hop_by_hop, Forwarding};
use super::host::RequestHost;
use super::policy::Passage;
use super::request_id;
use super::route::Route;
use super::upgrade::Upgrade;
use super::ConnInfo;
use crate::assertion::http_signature::{self, Params, Target, CONTENT_DIGEST};
use crate::assertion::AssertionSigner;
use crate::clock::Clock;
use crate::config::Config;
use crate::identity_headers::IdentityHeaders;
use crate::respond::body::{BodyLimits, ClientBody, RequestBody};

const ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-forwarded-access-token");
const ID_TOKEN: HeaderName = HeaderName::from_static("x-forwarded-id-token");

/// About how many headers rewriting adds: forwarding (4), request id,
/// Host, the identity block (up to 9), the assertion, passed tokens.
const ADDED_HEADERS: usize = 18;

/// Settings for rewriting, built once.
pub struct Rewriter {
    forwarding: Forwarding,
    /// doorward's session cookie name, when sessions exist.
    cookie_name: Option<String>,
    pass_access_token: bool,
    pass_id_token: bool,
    /// Headers covered by the HTTP message signature, when signing.
    signed_headers: Option<Vec<HeaderName>>,
    signed_body_limit: u64,
    clock: Clock,
}

/// A client request on its way through.
pub struct Request<'a, B> {
    pub parts: Parts,
    pub body: B,
    pub path: &'a str,
    pub host: Option<&'a RequestHost>,
    pub route: &'a Route,
    pub passage: &'a Passage,
    pub conn: &'a ConnInfo,
    pub request_id: &'a HeaderValue,
    pub upgrade: Option<Upgrade>,
}

/// The upstream request, ready to send.
pub struct Prepared {
    pub request: http::Request<RequestBody>,
    /// Resolves once the body has been sent whole.
    pub body_sent: tokio::sync::oneshot::Receiver<()>,
    /// The client's side of an upgrade, and what the upstream must answer.
    pub upgrade: Option<(OnUpgrade, Upgrade)>,
}

impl Rewriter {
    pub fn new(config: &Config, identity: &IdentityHeaders, cookie_name: Option<String>, clock: Clock) -> Self {
        let h = &config.headers;
        let signed_headers = h.http_message_signatures.then(|| {
            identity
                .set_names()
                .into_iter()
                .chain(HeaderName::from_bytes(h.assertion.as_bytes()).ok())
                .chain([request_id::HEADER])
                .collect()
        });
        Self {
            forwarding: Forwarding::new(config.server.trusted_proxies.clone()),
            cookie_name,
            pass_access_token: h.pass_access_token,
            pass_id_token: h.pass_id_token,
            signed_headers,
            signed_body_limit: h.signed_body_limit.0,
            clock,
        }
    }

    /// The client's address, as the forwarding rules read it.
    pub fn client_address(&self, headers: &http::HeaderMap, peer: std::net::IpAddr) -> std::net::IpAddr {
        self.forwarding.client_address(headers, peer)
    }

    pub async fn prepare<B: ClientBody>(
        &self,
        req: Request<'_, B>,
        signer: &AssertionSigner,
        limits: BodyLimits,
    ) -> Result<Prepared, ProxyError> {
        let Request {
            mut parts,
            body,
            path,
            host,
            route,
            passage,
            conn,
            request_id,
            upgrade,
        } = req;
        let declared = content_length(&parts);
        if let (Some(limit), Some(declared)) = (limits.max, declared) {
            if declared > limit {
                return Err(ProxyError::BodyTooLarge);
            }
        }
        let upgrade = match upgrade {
            Some(upgrade) if parts.version == Version::HTTP_11 => {
                parts.extensions.remove::<OnUpgrade>().map(|client| (client, upgrade))
            }
            _ => None,
        };
        parts.extensions = http::Extensions::new();

        let host_value = host.and_then(RequestHost::header_value);
        let headers = &mut parts.headers;
        // hyper sizes the map to what the client sent; the forwarding and
        // identity headers would grow (and rehash) it a few times over.
        headers.reserve(ADDED_HEADERS);
        remove_hop_by_hop(headers, upgrade.is_some());
        self.forwarding
            .apply(headers, conn.peer.ip(), conn.tls, host_value.as_ref());
        headers.insert(request_id::HEADER, request_id.clone());
        if let Some(name) = &self.cookie_name {
            crate::session::cookies::strip_own(headers, name);
        }
        let admitted = passage.admitted();
        if let Some(admitted) = admitted {
            if let Some(tokens) = admitted.passed_tokens() {
                if let (true, Some(access)) = (self.pass_access_token, &tokens.access) {
                    headers.insert(ACCESS_TOKEN, access.clone());
                }
                if let (true, Some(id)) = (self.pass_id_token, &tokens.id) {
                    headers.insert(ID_TOKEN, id.clone());
                }
            }
            crate::identity_headers::set(headers, admitted.headers());
            let now = self.clock.now();
            if let Some(assertion) = admitted.assertion(signer, route.rules.index, &route.rules.audience, now) {
                headers.insert(signer.header_name().clone(), assertion);
            }
        }
        let upstream_host = match host_value {
            Some(host) if route.preserve_host => host,
            _ => route.upstream.authority.clone(),
        };
        headers.insert(HOST, upstream_host);
        parts.uri = upstream_uri(&route.upstream.base_path, path, parts.uri.query())?;
        parts.version = Version::HTTP_11;

        let (body, body_sent) = match (&self.signed_headers, admitted) {
            (Some(covered), Some(_)) => {
                let bytes = self.read_signed_body(body, declared, limits).await?;
                if !bytes.is_empty() {
                    parts
                        .headers
                        .insert(CONTENT_DIGEST, http_signature::content_digest(&bytes));
                }
                self.sign(&mut parts, route, covered, signer);
                RequestBody::buffered(bytes)
            }
            _ => RequestBody::new(body, limits),
        };
        Ok(Prepared {
            request: http::Request::from_parts(parts, body),
            body_sent,
            upgrade,
        })
    }

    /// With signatures on, the body is read whole (up to its limit) so its
    /// digest can be covered: a captured signature then cannot carry
    /// another body.
    async fn read_signed_body(
        &self,
        body: impl ClientBody,
        declared: Option<u64>,
        limits: BodyLimits,
    ) -> Result<Bytes, ProxyError> {
        if declared.is_some_and(|d| d > self.signed_body_limit) {
            return Err(ProxyError::BodyTooLarge);
        }
        let max = limits
            .max
            .map_or(self.signed_body_limit, |m| m.min(self.signed_body_limit));
        RequestBody::read_whole(
            body,
            BodyLimits {
                max: Some(max),
                ..limits
            },
        )
        .await
        .map_err(|e| ProxyError::ClientBody(e.failure()))
    }

    fn sign(&self, parts: &mut Parts, route: &Route, covered: &[HeaderName], signer: &AssertionSigner) {
        let authority = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let created = self.clock.now();
        let nonce = http_signature::nonce();
        let target = Target {
            method: &parts.method,
            authority: &authority,
            https: route.upstream.is_https(),
            path: parts.uri.path(),
            query: parts.uri.query(),
        };
        let params = Params {
            created,
            expires: created + signer.ttl(),
            nonce: &nonce,
            key: signer.signing_key(),
        };
        let mut headers = std::mem::take(&mut parts.headers);
        http_signature::sign(&target, &mut headers, covered, &params);
        parts.headers = headers;
    }
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts.headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The origin-form URI the upstream receives: its base path, then exactly
/// the normalised path doorward matched, then the query untouched.
fn upstream_uri(base: &str, path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
    let mut target = String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str(base);
    target.push_str(path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    Uri::try_from(target).map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))
}
