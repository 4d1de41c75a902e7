//! The SCIM endpoints, top-down: authenticate, route by path and method,
//! read the body (bounded), dispatch, and answer every outcome as
//! `application/scim+json`. Errors become SCIM error bodies here and
//! nowhere else.
//!
//! The server writes the directory through a [`DirectoryHandle`]: its
//! store holds the rows, its clock stamps `meta`, and every successful
//! write reports what it changed to the handle's notifier (in production,
//! `auth`'s, which ends the sessions of deactivated users and re-derives
//! the identity of users whose groups or roles changed, on every replica).

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method};
use serde_json::Value;

use super::audit::{self, Change};
use super::auth::Credentials;
use super::collection::{self, Collection, Edit};
use super::definitions::Kind;
use super::errors::ScimError;
use super::groups::Groups;
use super::list::{self, Query};
use super::users::Users;
use super::{discovery, reply};
use crate::config::Config;
use crate::directory::DirectoryHandle;
use crate::respond::body::{BodyError, BodyLimits, ClientBody, RequestBody};
use crate::respond::Reply;

#[derive(Debug, thiserror::Error)]
pub enum ScimSetupError {
    #[error("scim: SCIM needs a [[provider]]: the directory is kept in the login store and changes sessions")]
    NoProvider,
    #[error("scim.{key}: {reason}")]
    Secret { key: &'static str, reason: String },
}

/// The SCIM server of one doorward.
pub struct Scim {
    directory: DirectoryHandle,
    credentials: Credentials,
    base_path: String,
    /// The absolute URL of the base path, when doorward knows it (on the
    /// main listener: `public_url` + internal prefix + base path). On the
    /// SCIM listener it is built from each request's host.
    public_base: Option<String>,
    max_body: u64,
    max_page: usize,
    idle: Duration,
    deadline: Duration,
}

/// One request to `/Users` or `/Groups`, as routed.
struct CollectionRequest<'a> {
    method: &'a Method,
    id: Option<&'a str>,
    headers: &'a HeaderMap,
    params: &'a [(String, String)],
    base: &'a str,
    /// The SCIM credential that authenticated it, for the audit trail.
    credential: &'a str,
}

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address: behind `trusted_proxies`, read from the
    /// forwarding chain (the TCP peer is then the proxy, shared by all).
    pub ip: IpAddr,
    /// `scheme://host[:port]` of the request (the listener's canonical host).
    pub origin: Option<String>,
}

impl Scim {
    /// The server `[scim]` describes, writing `directory` (which there is
    /// only with a provider); `None` when SCIM is off.
    pub fn from_config(config: &Config, directory: Option<DirectoryHandle>) -> Result<Option<Self>, ScimSetupError> {
        let scim = &config.scim;
        if !scim.enabled {
            return Ok(None);
        }
        let directory = directory.ok_or(ScimSetupError::NoProvider)?;
        let resolve = |key: &'static str, source: &crate::config::units::SecretSource| {
            source.resolve().map_err(|e| ScimSetupError::Secret {
                key,
                reason: e.to_string(),
            })
        };
        let bearer = scim
            .bearer_token
            .as_ref()
            .map(|s| resolve("bearer_token", s))
            .transpose()?;
        let password = scim
            .basic_password
            .as_ref()
            .map(|s| resolve("basic_password", s))
            .transpose()?;
        let basic = scim.basic_user.as_deref().zip(password.as_ref());
        let public_base = match (scim.listen, &config.server.public_url) {
            (None, Some(url)) => Some(format!(
                "{}{}{}",
                url.trim_end_matches('/'),
                config.server.internal_prefix,
                scim.base_path
            )),
            _ => None,
        };
        Ok(Some(Self {
            credentials: Credentials::new(bearer.as_ref(), basic, directory.clock().clone()),
            directory,
            base_path: scim.base_path.clone(),
            public_base,
            max_body: scim.max_body.0,
            max_page: usize::try_from(scim.max_page_size).unwrap_or(usize::MAX).max(1),
            idle: config.server.idle_timeout.0,
            deadline: config.server.upload_timeout.0,
        }))
    }

    /// Where the endpoints start (`/scim/v2`), under the internal prefix on
    /// the main listener or at the root of the SCIM listener.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    pub fn max_page(&self) -> usize {
        self.max_page
    }

    /// Answers one request; `rest` is the path after the base path.
    pub async fn handle(&self, parts: &Parts, body: impl ClientBody, rest: &str, peer: &Peer) -> Reply {
        match self.route(parts, body, rest, peer).await {
            Ok(reply) => reply,
            Err(error) => {
                if error.is_server_side() {
                    tracing::warn!(%error, "scim: request failed");
                } else {
                    tracing::debug!(%error, method = %parts.method, path = rest, "scim: request refused");
                }
                let mut reply = error.to_reply();
                if matches!(error, ScimError::Unauthorized) {
                    self.credentials.challenge(&mut reply);
                }
                reply
            }
        }
    }

    async fn route(&self, parts: &Parts, body: impl ClientBody, rest: &str, peer: &Peer) -> Result<Reply, ScimError> {
        let credential = self.credentials.check(&parts.headers, peer.ip)?;
        let base = self.base_url(peer);
        let base = base.as_str();
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let method = &parts.method;
        let params: Vec<(String, String)> = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        let h = &parts.headers;
        let get_only = |ok: bool| if ok { Ok(()) } else { Err(ScimError::MethodNotAllowed) };
        let to_collection = |id| CollectionRequest {
            method,
            id,
            headers: h,
            params: &params,
            base,
            credential,
        };
        match segments.as_slice() {
            ["ServiceProviderConfig"] => {
                get_only(method == Method::GET)?;
                let config = discovery::service_provider_config(base, self.max_page, self.credentials.schemes());
                Ok(reply::json(http::StatusCode::OK, &config))
            }
            ["ResourceTypes", id @ ..] if id.len() <= 1 => {
                get_only(method == Method::GET)?;
                Ok(reply::json(
                    http::StatusCode::OK,
                    &discovery::resource_types(base, id.first().copied())?,
                ))
            }
            ["Schemas", id @ ..] if id.len() <= 1 => {
                get_only(method == Method::GET)?;
                Ok(reply::json(
                    http::StatusCode::OK,
                    &discovery::schemas(base, id.first().copied())?,
                ))
            }
            ["Users", tail @ ..] if tail.len() <= 1 => {
                self.collection::<Users>(to_collection(tail.first().copied()), body)
                    .await
            }
            ["Groups", tail @ ..] if tail.len() <= 1 => {
                self.collection::<Groups>(to_collection(tail.first().copied()), body)
                    .await
            }
            ["Bulk"] => Err(ScimError::NotImplemented("bulk operations are not supported")),
            [".search"] => {
                if method != Method::POST {
                    return Err(ScimError::MethodNotAllowed);
                }
                let body = self.read_json(h, body).await?;
                let users = Query::from_search(Kind::User, &body, self.max_page)?;
                let groups = Query::from_search(Kind::Group, &body, self.max_page)?;
                let found = list::everything(self.directory.store(), base, &users, &groups).await?;
                Ok(reply::json(http::StatusCode::OK, &found))
            }
            ["Me"] => Err(ScimError::NotImplemented("/Me is not supported")),
            _ => Err(ScimError::NotFound("no such SCIM endpoint".into())),
        }
    }

    /// `/Users` or `/Groups` and what follows: the list, `.search`, or one
    /// resource. Each successful write is audited here, where its body is
    /// known (the names of the attributes it wrote, never their values).
    async fn collection<C: Collection>(
        &self,
        request: CollectionRequest<'_>,
        body: impl ClientBody,
    ) -> Result<Reply, ScimError> {
        let CollectionRequest {
            method,
            id,
            headers,
            params,
            base,
            credential,
        } = request;
        let ok = |value: Value| reply::json(http::StatusCode::OK, &value);
        let dir = &self.directory;
        let audited = |change: Change, fields: &[String], reply: Reply| {
            audit::change::<C>(credential, change, id, fields, &reply);
            reply
        };
        match (id, method) {
            (None, &Method::GET) => {
                let query = Query::from_params(C::KIND, params, self.max_page)?;
                Ok(ok(self.list(C::KIND, base, &query).await?))
            }
            (Some(".search"), &Method::POST) => {
                let body = self.read_json(headers, body).await?;
                let query = Query::from_search(C::KIND, &body, self.max_page)?;
                Ok(ok(self.list(C::KIND, base, &query).await?))
            }
            (None, &Method::POST) => {
                let body = self.read_json(headers, body).await?;
                let fields = body.as_object().map(audit::fields_of_resource).unwrap_or_default();
                let reply = collection::create::<C>(dir, base, &body, params).await?;
                Ok(audited(Change::Create, &fields, reply))
            }
            (Some(".search"), _) | (None, _) => Err(ScimError::MethodNotAllowed),
            (Some(id), &Method::GET) => collection::get::<C>(dir, base, id, headers, params).await,
            (Some(id), &Method::PUT) => {
                let edit = Edit::replace(C::KIND, &self.read_json(headers, body).await?)?;
                let fields = audit::fields_of_edit(&edit);
                let reply = collection::edit::<C>(dir, base, id, headers, edit, params).await?;
                Ok(audited(Change::Replace, &fields, reply))
            }
            (Some(id), &Method::PATCH) => {
                let edit = Edit::patch(&self.read_json(headers, body).await?)?;
                let fields = audit::fields_of_edit(&edit);
                let reply = collection::edit::<C>(dir, base, id, headers, edit, params).await?;
                Ok(audited(Change::Patch, &fields, reply))
            }
            (Some(id), &Method::DELETE) => {
                let reply = collection::delete::<C>(dir, id, headers).await?;
                Ok(audited(Change::Delete, &[], reply))
            }
            (Some(_), _) => Err(ScimError::MethodNotAllowed),
        }
    }

    async fn list(&self, kind: Kind, base: &str, query: &Query) -> Result<Value, ScimError> {
        match kind {
            Kind::User => list::users(self.directory.store(), base, query).await,
            Kind::Group => list::groups(self.directory.store(), base, query).await,
        }
    }

    /// `{public_url}/_doorward/scim/v2`, or the SCIM listener's origin and
    /// base path.
    fn base_url(&self, peer: &Peer) -> String {
        match (&self.public_base, &peer.origin) {
            (Some(base), _) => base.clone(),
            (None, Some(origin)) => format!("{origin}{}", self.base_path),
            (None, None) => self.base_path.clone(),
        }
    }

    /// The request body as JSON, refused past `max_body` before it is read
    /// whole, and only as `application/scim+json` or `application/json` (a
    /// browser cannot send those cross-site without a preflight).
    async fn read_json(&self, headers: &HeaderMap, body: impl ClientBody) -> Result<Value, ScimError> {
        let media = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if !matches!(media.as_deref(), Some("application/scim+json" | "application/json")) {
            return Err(ScimError::UnsupportedMediaType);
        }
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return Err(ScimError::TooLarge(self.max_body));
        }
        let limits = BodyLimits {
            max: Some(self.max_body),
            idle: self.idle,
            deadline: self.deadline,
        };
        let bytes: Bytes = RequestBody::read_whole(body, limits).await.map_err(|e| match e {
            BodyError::TooLarge => ScimError::TooLarge(self.max_body),
            other => ScimError::InvalidSyntax(format!("the request body could not be read: {other}")),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ScimError::InvalidSyntax(format!("the body is not JSON: {e}")))
    }
}
