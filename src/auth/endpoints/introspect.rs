//! Endpoints that tell someone who the caller is: forward-auth for another
//! ingress (`/auth`), the caller's own identity (`/userinfo`) and the
//! admins' claims view (`/debug`). Each answers only for a caller the gate
//! admitted, with the same rules as a proxied request.

use http::request::Parts;
use http::Response;

use super::{param, query_pairs};
use crate::auth::{admit, Admitted, Auth, AuthError, Caller, Refusal, Requirements, RouteRules, StepUp};
use crate::respond::{json, no_store, Reply, ResponseBody};

/// The rules an introspection request is judged by: a named route's
/// (`?route=NAME`: its policy, provider pin, required groups and roles, and
/// whether it takes bearer tokens), or the global policy without bearer
/// tokens.
fn rules<'a>(auth: &'a Auth, parts: &Parts) -> Result<Option<&'a RouteRules>, AuthError> {
    let query = query_pairs(parts);
    match param(&query, "route") {
        None => Ok(None),
        Some(name) => auth
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(Some)
            .ok_or(AuthError::BadRequest("no route by that name")),
    }
}

/// Recognises and admits the caller, or says why not.
async fn admitted(auth: &Auth, parts: &Parts, rules: Option<&RouteRules>) -> Result<(Caller, Admitted), AuthError> {
    let bearer = rules.is_some_and(|r| r.bearer);
    let caller = auth
        .recognise(&parts.headers, bearer)
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    let now = auth.clock().now();
    let needs = rules.map_or_else(Requirements::default, |r| r.requirements(now));
    match admit(&caller, &needs) {
        Ok(admitted) => Ok((caller, admitted)),
        // A session from another IdP is not this route's user: not logged in.
        Err(Refusal::WrongProvider { .. }) => Err(AuthError::Unauthenticated),
        // The same answer as the proxy gives an API client (RFC 9470).
        Err(Refusal::Assurance(reason)) => Err(AuthError::InsufficientAuthentication(StepUp {
            reason,
            ask: needs.assurance.clone(),
        })),
        Err(refusal) => {
            crate::audit!(
                crate::audit::Kind::AccessDenied,
                route = rules.map(|r| r.name.as_str()),
                provider = caller.provider(),
                user = caller.log_name(),
                rule = refusal.kind(),
                reason = %refusal,
            );
            Err(AuthError::Forbidden(refusal.to_string()))
        }
    }
}

/// For nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz: 200
/// with the identity headers and a signed assertion when the gate admits
/// the caller, 401 when nobody is logged in, 403 when the rules say no.
pub(super) async fn forward_auth(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    let rules = rules(auth, parts)?;
    let (_, admitted) = admitted(auth, parts, rules).await?;
    let mut response = Response::new(ResponseBody::empty());
    let headers = response.headers_mut();
    crate::identity_headers::set(headers, admitted.headers());
    let (slot, audience) = rules.map_or((usize::MAX, "doorward"), |r| (r.index, r.audience.as_str()));
    let slot = if slot == usize::MAX { auth.routes.len() } else { slot };
    if let Some(assertion) = admitted.assertion(&auth.signer, slot, audience, auth.clock().now()) {
        headers.insert(auth.signer.header_name().clone(), assertion);
    }
    Ok(no_store(response))
}

/// The current identity as JSON, for single-page apps.
pub(super) async fn userinfo(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    let rules = rules(auth, parts)?;
    let (_, admitted) = admitted(auth, parts, rules).await?;
    let identity = admitted.identity();
    let body = serde_json::json!({
        "sub": identity.subject,
        "user": identity.user,
        "email": identity.email,
        "preferred_username": identity.preferred_username,
        "groups": identity.groups,
        "roles": identity.roles,
        "role": identity.role,
        "orgs": identity.orgs,
        "idp": identity.idp,
        "idp_issuer": identity.idp_issuer,
        "acr": identity.authentication.acr,
        "amr": identity.authentication.amr,
        "auth_time": identity.authentication.auth_time,
    });
    Ok(json(body.to_string()))
}

/// For admins holding an `[identity] debug_roles` role: the logged-in
/// user's claims as the IdP sent them, and the identity under every policy
/// with the reason for each value. Never the tokens.
pub(super) async fn debug(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    let (caller, admitted) = admitted(auth, parts, None).await?;
    let Caller::Session(session) = caller else {
        return Err(AuthError::Unauthenticated);
    };
    let allowed = &auth.engine().global().debug_roles;
    if !admitted.identity().roles.iter().any(|r| allowed.contains(r)) {
        return Err(AuthError::Forbidden(format!(
            "user `{}` holds no [identity] debug_roles role",
            admitted.identity().user
        )));
    }
    let (record, _) = auth
        .sessions
        .record(&session.key)
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    let snapshot: serde_json::Value = serde_json::from_str(&record.claims).unwrap_or_default();
    let merged = crate::login::merged_claims(&record.claims);
    // What the SCIM directory says of this user, shown beside the claims
    // (each value that came from it says so in its reason), when it is
    // bound to this session's provider.
    let bound = auth.directory.as_ref().is_some_and(|b| b.binds(&record.provider));
    let facts = match record.match_key.as_ref().filter(|_| bound) {
        Some(key) => crate::store::directory::facts_for(auth.sessions.store(), key).await?,
        None => None,
    };
    let directory = facts.as_ref().map(crate::auth::view::directory_of);
    let policies: Vec<_> = auth
        .engine()
        .policies
        .iter()
        .map(|p| p.compute_with(&merged, directory.as_ref(), true))
        .collect();
    let body = serde_json::json!({
        "provider": record.provider,
        "idp_issuer": admitted.view().outcome.identity.idp_issuer,
        "claims": snapshot,
        "directory": facts.as_ref().map(|f| serde_json::json!({
            "user_id": f.user_id, "active": f.active, "groups": f.groups,
            "roles": directory.as_ref().map(|d| d.roles.clone()),
        })),
        "identity": policies.first(),
        "route_policies": policies.get(1..).unwrap_or_default(),
    });
    Ok(json(serde_json::to_string_pretty(&body).unwrap_or_default()))
}
