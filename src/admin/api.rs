//! The admin HTTP API, served only on `[admin] listen`:
//! `GET /sessions?user=&provider=&session=` lists sessions as the CLI does,
//! `POST /sessions/revoke` with `{"user": …, "provider": …}`,
//! `{"session": …}` or `{"provider": …}` ends them (`{"revoked": N}`).
//! Every request needs the configured bearer token (compared in constant
//! time); a revocation goes through the directory handle, so this process
//! forgets the sessions at once and every replica within a second.

use bytes::Bytes;
use http::header::{ALLOW, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::{describe, SessionLine};
use crate::config::Config;
use crate::directory::DirectoryHandle;
use crate::respond::body::{BodyError, BodyLimits, ClientBody, RequestBody};
use crate::respond::{full, Reply};
use crate::secret::SecretString;
use crate::store::{SessionSelector, SessionStore};

/// The largest request body: a selector is a few names.
const MAX_BODY: u64 = 16 * 1024;

/// The admin API of one gateway (rebuilt by a reload, so a new token
/// applies at once).
pub struct AdminApi {
    directory: DirectoryHandle,
    token: SecretString,
    limits: BodyLimits,
}

/// The revoke request's body: exactly these keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    user: Option<String>,
    provider: Option<String>,
    session: Option<String>,
}

impl AdminApi {
    /// The API when `[admin] listen` and its token are configured and
    /// there are sessions to manage (a directory handle from auth).
    pub fn from_config(config: &Config, directory: Option<DirectoryHandle>) -> Option<Self> {
        config.admin.listen?;
        let token = config.admin.token.as_ref()?.resolve().ok()?;
        Some(Self {
            directory: directory?,
            token,
            limits: BodyLimits {
                max: Some(MAX_BODY),
                idle: config.server.idle_timeout.0,
                deadline: config.server.upload_timeout.0,
            },
        })
    }

    /// One request on the admin listener; `path` is normalised.
    pub async fn handle(&self, parts: &Parts, body: impl ClientBody, path: &str) -> Reply {
        // First, on every path: callers without the token learn nothing.
        if !self.authorized(parts) {
            tracing::warn!("admin api: a request without the right bearer token was refused");
            let mut reply = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            reply.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"doorward-admin\""),
            );
            return reply;
        }
        match path {
            "/sessions" if parts.method == Method::GET => self.list(parts).await,
            "/sessions/revoke" if parts.method == Method::POST => self.revoke(body).await,
            "/sessions" => not_allowed("GET"),
            "/sessions/revoke" => not_allowed("POST"),
            _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
        }
    }

    fn authorized(&self, parts: &Parts) -> bool {
        let Some(value) = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        match value.trim().split_once(' ') {
            Some((scheme, presented)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.token.matches(presented.trim().as_bytes())
            }
            _ => false,
        }
    }

    async fn list(&self, parts: &Parts) -> Reply {
        let mut selector = SessionSelector::default();
        for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
            let slot = match name.as_ref() {
                "user" => &mut selector.user,
                "provider" => &mut selector.provider,
                "session" => &mut selector.session,
                other => return error(StatusCode::BAD_REQUEST, &format!("unknown query parameter `{other}`")),
            };
            *slot = Some(value.into_owned());
        }
        if let Some(problem) = selector.problem() {
            return error(StatusCode::BAD_REQUEST, problem);
        }
        match self.directory.store().list_sessions(&selector).await {
            Ok(records) => {
                let lines: Vec<SessionLine> = records.iter().map(SessionLine::of).collect();
                json(StatusCode::OK, &serde_json::json!({ "sessions": lines }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin api: listing sessions failed");
                error(StatusCode::SERVICE_UNAVAILABLE, "the store did not answer")
            }
        }
    }

    async fn revoke(&self, body: impl ClientBody) -> Reply {
        let bytes: Bytes = match RequestBody::read_whole(body, self.limits).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the body could not be read: {e}")),
        };
        let asked: RevokeBody = match serde_json::from_slice(&bytes) {
            Ok(asked) => asked,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not a JSON object of `user`, `provider` and `session`: {e}"),
                )
            }
        };
        let selector = SessionSelector {
            user: asked.user,
            provider: asked.provider,
            session: asked.session,
            ..SessionSelector::default()
        };
        if let Some(problem) = selector.problem() {
            return error(StatusCode::BAD_REQUEST, problem);
        }
        if selector.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "name the sessions to end: `user`, `session` or `provider`",
            );
        }
        match self.directory.revoke_sessions(&selector).await {
            Ok(ended) => {
                tracing::info!(by = "admin api", what = %describe(&selector), revoked = ended.len(), "sessions revoked by hand");
                crate::audit!(
                    crate::audit::Kind::SessionEnded,
                    by = "operator",
                    reason = %format!("admin api: {}", describe(&selector)),
                    count = ended.len(),
                );
                json(StatusCode::OK, &serde_json::json!({ "revoked": ended.len() }))
            }
            Err(e) => {
                tracing::warn!(by = "admin api", what = %describe(&selector), error = %e, "revoking sessions failed");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the revocation did not complete; try again",
                )
            }
        }
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    full(status, value.to_string(), "application/json")
}

fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut reply = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
    reply.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    reply
}
