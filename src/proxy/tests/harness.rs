//! A `Gateway` from config text, on the login machinery of
//! [`crate::auth::endpoints::tests::harness`], and requests for it.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Request};

use super::super::connection::Seen;
use super::super::errors::ProxyError;
use super::super::{ConnInfo, Gateway, Listener};
use crate::auth::endpoints::tests::harness::{self as auth_harness, TestAuth};
use crate::respond::body::ClientBody;
use crate::respond::Reply;

pub(super) use auth_harness::{empty, header, text};

/// A gateway, the login machinery under it, and a client connection.
pub(super) struct TestGateway {
    pub t: TestAuth,
    pub gateway: Gateway,
    pub conn: ConnInfo,
}

impl TestGateway {
    /// Assembled from the basics and `rest` (which must configure a
    /// provider) as `serve` assembles it.
    pub(super) async fn new(rest: &str) -> Self {
        Self::with_server("", rest).await
    }

    /// Like [`Self::new`], with `server` lines in `[server]`.
    pub(super) async fn with_server(server: &str, rest: &str) -> Self {
        let t = TestAuth::with_server(server, rest).await;
        let gateway = Gateway::new(
            &t.config,
            Arc::clone(&t.metrics),
            Some(Arc::clone(&t.auth)),
            Arc::clone(&t.signer),
            Arc::clone(&t.pages),
            t.clock.clone(),
        )
        .expect("gateway");
        Self {
            t,
            gateway,
            conn: conn(Listener::Main),
        }
    }

    /// The whole request path, answer and all.
    pub(super) async fn handle(&self, req: Request<impl ClientBody>) -> Reply {
        self.gateway.handle(req, &self.conn).await
    }

    /// The request path before its errors become a response, to see which.
    pub(super) async fn process(&self, req: Request<impl ClientBody>) -> Result<Reply, ProxyError> {
        let id = HeaderValue::from_static("test-request");
        self.gateway.process(req, &self.conn, &id, &mut Seen::default()).await
    }

    /// The `Cookie` header naming a new session for `sub` with `groups`.
    pub(super) async fn session(&self, sub: &str, groups: &[&str]) -> String {
        self.t.session(sub, groups).await
    }
}

/// A connection from 192.0.2.7 on `listener`, over TLS.
pub(super) fn conn(listener: Listener) -> ConnInfo {
    ConnInfo {
        peer: SocketAddr::from(([192, 0, 2, 7], 50_000)),
        tls: true,
        activity: Arc::default(),
        listener,
    }
}

/// A bodiless request.
pub(super) fn get(uri: &str, headers: &[(&str, &str)]) -> Request<http_body_util::Empty<bytes::Bytes>> {
    request(Method::GET, uri, headers, empty())
}

pub(super) fn request<B>(method: Method, uri: &str, headers: &[(&str, &str)], body: B) -> Request<B> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("request")
}
