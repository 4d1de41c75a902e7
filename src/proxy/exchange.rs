//! The exchange with the upstream: send the prepared request, bound the
//! wait for its answer, and make the answer fit to return: hop-by-hop
//! headers removed, doorward's own cookies kept out of the app's reach, an
//! upgrade joined only when the upstream proved it understood it. Tunnels
//! and open-ended bodies of admitted callers are registered to be ended
//! when their admission no longer holds (see `watch`).

use http::response::Parts;
use http::{HeaderValue, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use tracing::Instrument;

use super::errors::ProxyError;
use super::forwarding::remove_hop_by_hop;
use super::rewrite::Prepared;
use super::route::Route;
use super::upgrade::spawn_tunnel;
use super::upstream::UpstreamError;
use super::watch::{open_ended, Admission};
use super::ConnInfo;
use crate::access::{Registration, Registry};
use crate::respond::body::{body_failure_in, PooledBody};
use crate::respond::{Reply, ResponseBody};
use crate::telemetry::traces;

pub async fn exchange(
    prepared: Prepared,
    route: &Route,
    conn: &ConnInfo,
    request_id: &HeaderValue,
    cookie_name: Option<&str>,
    watched: Option<(Admission<'_>, &Registry)>,
) -> Result<Reply, ProxyError> {
    let Prepared {
        mut request,
        body_sent,
        upgrade,
    } = prepared;
    let span = tracing::info_span!(target: "doorward::trace", "doorward.upstream",
        otel.kind = "client",
        http.request.method = %request.method(),
        http.route = %route.rules.name,
        http.response.status_code = tracing::field::Empty,
    );
    traces::inject(&span, request.headers_mut());
    let exchange = route.upstream.send(request, true).instrument(span.clone());
    tokio::pin!(exchange);
    // The response timeout runs from the end of the upload: a slow but
    // steady upload is bounded by the idle timeout, not this one.
    let sent = tokio::select! {
        response = &mut exchange => Ok(response),
        _ = body_sent => tokio::time::timeout(route.timeout, &mut exchange).await,
    };
    let outcome = match sent {
        Err(_) => Err(ProxyError::UpstreamTimeout(route.timeout)),
        Ok(Err(UpstreamError::Request(e))) => Err(match body_failure_in(&e) {
            Some(failure) => ProxyError::ClientBody(failure),
            None => ProxyError::Upstream(UpstreamError::Request(e)),
        }),
        Ok(result) => result.map_err(ProxyError::from),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(e) => {
            // Only a client's broken upload is not the upstream's failure.
            traces::client_failed(&span, e.upstream_kind().unwrap_or("client_body"));
            return Err(e);
        }
    };

    let (mut head, body) = response.into_parts();
    span.record("http.response.status_code", head.status.as_u16());
    traces::client_answered(&span, head.status);
    let switching = head.status == StatusCode::SWITCHING_PROTOCOLS;
    match (switching, upgrade, head.extensions.remove::<OnUpgrade>()) {
        (false, _, _) => remove_hop_by_hop(&mut head.headers, false),
        (true, Some((client, upgrade)), Some(upstream)) => {
            upgrade.check_switch(&head.headers)?;
            remove_hop_by_hop(&mut head.headers, true);
            let id = request_id.to_str().unwrap_or("-").to_string();
            let registration = watched.map(|(admission, registry)| admission.register(registry));
            spawn_tunnel(client, upstream, conn.activity.busy(), id, registration);
            return Ok(finish(head, body, cookie_name, None));
        }
        (true, _, _) => return Err(ProxyError::BadUpgrade("the upstream switched protocols unasked")),
    }
    let registration = watched
        .filter(|_| open_ended(&head.headers, &body))
        .map(|(admission, registry)| admission.register(registry));
    Ok(finish(head, body, cookie_name, registration))
}

fn finish(mut head: Parts, body: PooledBody, cookie_name: Option<&str>, watch: Option<Registration>) -> Reply {
    if let Some(name) = cookie_name {
        crate::session::cookies::strip_own_set_cookie(&mut head.headers, name);
    }
    head.extensions = http::Extensions::new();
    // The upstream's HTTP version is its own business; the client keeps
    // the version it spoke.
    head.version = Version::default();
    let body = match watch {
        Some(registration) => ResponseBody::Watched(body, registration),
        None => ResponseBody::Upstream(body),
    };
    Response::from_parts(head, body)
}
