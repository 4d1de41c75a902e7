//! Starting a login (`/login`: pick the provider or show the chooser,
//! remember the login in a sealed cookie, send the browser to the IdP) and
//! finishing one, whatever the protocol: the login policy, a bound on what
//! is stored, a brand-new session.

use http::request::Parts;

use super::{param, query_pairs, redirect};
use crate::audit::Kind;
use crate::auth::admission::ASSURANCE_SKEW;
use crate::auth::{Auth, AuthError};
use crate::identity::engine::Outcome;
use crate::login::pending::{self, PendingLogin, ProtocolState, StateError};
use crate::login::{AssuranceAsk, LoginResult};
use crate::providers::LoginError;
use crate::respond::page::Choice;
use crate::respond::{add_cookie, Denial, Reply};
use crate::session::{cookies, Replacement};
use crate::store::{SessionKey, SessionStore};

/// Pending logins one browser may have at once. More (a `/login` loop, a
/// page opening many tabs) drop the oldest, so no cookie bomb can grow.
const MAX_PENDING_LOGINS: usize = 3;

/// `/login?rd=<return-to>&provider=<name>&route=<name>`: with a route
/// that asks for assurance (`acr`, `max_age`), the login asks the IdP for
/// it, and raises the browser's session at that provider if it has one.
pub(super) async fn start(auth: &Auth, parts: &Parts) -> Result<Reply, AuthError> {
    let query = query_pairs(parts);
    let return_to = param(&query, "rd")
        .and_then(|rd| auth.redirects.check(rd))
        .unwrap_or_else(|| "/".to_string());
    let ask = match param(&query, "route") {
        None => AssuranceAsk::default(),
        Some(name) => auth
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.assurance.clone())
            .ok_or(AuthError::BadRequest("no route by that name"))?,
    };
    let provider = match param(&query, "provider") {
        Some(name) => auth.provider(name).ok_or(AuthError::BadRequest("no such provider"))?,
        None if auth.providers.len() == 1 => &auth.providers[0],
        None => {
            let choices: Vec<Choice> = auth
                .providers
                .iter()
                .map(|p| Choice {
                    name: p.name().to_string(),
                    display: p.display_name().to_string(),
                })
                .collect();
            return Ok(auth.pages.chooser(&choices, &return_to));
        }
    };
    let raises = if ask.is_empty() {
        None
    } else {
        // A store that cannot say makes this an ordinary login.
        auth.session(&parts.headers)
            .await
            .ok()
            .flatten()
            .filter(|session| session.provider == provider.name())
            .map(|session| session.key.0)
    };
    let start = provider
        .start_login(&auth.urls.callback, &ask)
        .await
        .map_err(|e| match e {
            LoginError::Unreachable(why) => AuthError::LoginUnavailable(why),
            LoginError::Failed(why) => AuthError::LoginFailed(why),
        })?;
    let pending = PendingLogin {
        provider: provider.name().to_string(),
        key: start.key,
        state: start.state,
        return_to,
        created_at: auth.clock().now(),
        ask,
        raises,
    };
    let mut response = redirect(&start.redirect)?;
    remember(auth, parts, &pending, &mut response)?;
    Ok(response)
}

/// Sets the sealed pending-login cookie, and clears this browser's oldest
/// pending logins beyond [`MAX_PENDING_LOGINS`].
fn remember(auth: &Auth, parts: &Parts, pending: &PendingLogin, response: &mut Reply) -> Result<(), AuthError> {
    let name = pending::cookie_name(&auth.cookie_base, &pending.key)
        .ok_or_else(|| AuthError::LoginFailed("unusable login key".into()))?;
    let prefix = pending::cookie_prefix(&auth.cookie_base);
    let keys = auth.sessions.keys();
    let mut existing: Vec<(i64, String)> = cookies::pairs(&parts.headers)
        .filter(|(key, _)| key.starts_with(prefix.as_bytes()))
        .filter_map(|(key, value)| {
            let key = std::str::from_utf8(key).ok()?.to_string();
            // A cookie that does not open is the oldest of all: drop it first.
            let created = std::str::from_utf8(value)
                .ok()
                .and_then(|value| PendingLogin::created_at_of(&keys, &key, value))
                .unwrap_or(i64::MIN);
            Some((created, key))
        })
        .filter(|(_, key)| *key != name)
        .collect();
    existing.sort();
    let excess = (existing.len() + 1).saturating_sub(MAX_PENDING_LOGINS);
    let settings = &auth.sessions.settings;
    for (_, stale) in existing.iter().take(excess) {
        add_cookie(response, settings.cookie.clear_cookie(stale));
    }
    let sealed = pending.seal(&keys, &name);
    let cookie = match pending.state {
        // The SAML response comes back as a cross-site POST, which only
        // carries SameSite=None cookies.
        ProtocolState::Saml { .. } => settings
            .cookie
            .set_cross_site_cookie(&name, &sealed, auth.login_timeout),
        ProtocolState::Oidc { .. } => settings.cookie.set_cookie(&name, &sealed, auth.login_timeout),
    };
    add_cookie(response, cookie);
    Ok(())
}

/// The pending login a returning browser belongs to, by its key (OIDC
/// `state`, SAML `RelayState`), with the cookie's name.
pub(super) fn recall(auth: &Auth, parts: &Parts, key: &str) -> Result<(PendingLogin, String), AuthError> {
    let failed = |e: StateError| AuthError::LoginFailed(e.to_string());
    let name = pending::cookie_name(&auth.cookie_base, key).ok_or(failed(StateError::MissingState))?;
    let sealed = cookies::find(&parts.headers, &name).ok_or(failed(StateError::NoCookie))?;
    let pending = PendingLogin::open(
        &auth.sessions.keys(),
        &name,
        sealed,
        key,
        auth.clock().now(),
        auth.login_timeout,
    )
    .map_err(failed)?;
    Ok((pending, name))
}

/// Finishes any login: what it was asked to prove is checked, the claims
/// are bounded, the login policy decides (on the claims, then with the
/// directory's facts), and only then is a brand-new session made (a new id
/// at every login: no fixation), or, for a step-up of the same user, the
/// session it raises updated. `pending` is the login that was started
/// and its cookie's name (none for an unsolicited SAML response).
pub(super) async fn finish(
    auth: &Auth,
    result: LoginResult,
    return_to: &str,
    pending: Option<(&PendingLogin, &str)>,
) -> Result<Reply, AuthError> {
    let pending_cookie = pending.map(|(_, cookie)| cookie);
    let raises = match pending {
        Some((pending, _)) => step_up_target(auth, pending, &result).await?,
        None => None,
    };
    let stored = result.claims.to_string().len();
    if stored > auth.max_claims_bytes {
        return Err(AuthError::LoginFailed(format!(
            "the IdP sent {stored} bytes of claims for `{}`; [session] max_claims_size allows {}",
            result.subject, auth.max_claims_bytes
        )));
    }
    let outcome = auth.engine().global().compute(&result.merged, false);
    if !outcome.login.allowed {
        return Err(AuthError::LoginDenied(Denial {
            reason: format!(
                "user `{}` from `{}`: {}",
                outcome.identity.user,
                result.provider,
                outcome.login.reason.unwrap_or_default()
            ),
            account: outcome.identity.user,
        }));
    }
    let match_key = auth
        .directory_admits(
            &result.provider,
            &result.merged,
            &result.subject,
            &outcome.identity.user,
        )
        .await?;
    auth.signals_admit(&result).await?;
    log_login(auth, &result, &outcome);
    // The directory's groups and roles can change who may log in: the
    // views are derived with its facts and decide before anything is
    // stored, so a refused login leaves no session behind.
    let derived = auth.sessions.derive_login(&result, match_key.as_deref()).await?;
    let outcome = &derived.views.global().outcome;
    if !outcome.login.allowed {
        return Err(AuthError::LoginDenied(Denial {
            account: outcome.identity.user.clone(),
            reason: format!(
                "user `{}`: {}",
                outcome.identity.user,
                outcome.login.reason.clone().unwrap_or_default()
            ),
        }));
    }
    let settings = &auth.sessions.settings;
    let mut response = redirect(return_to)?;
    // For the audit trail, whichever way the session is made.
    let (provider, subject, user) = (
        result.provider.clone(),
        result.subject.clone(),
        outcome.identity.user.clone(),
    );
    let raised = match raises {
        Some(key) => auth.sessions.replace(&key, result.clone(), Replacement::StepUp).await?,
        None => None,
    };
    if let (Some(_), Some(key)) = (&raised, raises) {
        // Every replica (and every process on one SQLite file) drops its
        // cached copy of the weaker session now.
        auth.sessions.store().announce_changed(&[key]).await?;
        tracing::info!(%provider, %user, "step-up raised the session");
        crate::audit!(
            Kind::StepUp,
            provider = %provider,
            user = %user,
            subject = %subject,
            session = %crate::audit::session_ref(&key.0),
            acr = result.authentication.acr.as_deref(),
        );
    } else {
        let max_age = i64::try_from(settings.absolute_timeout.as_secs()).unwrap_or(i64::MAX);
        let (sealed, live) = auth.sessions.create_derived(result, match_key, derived).await?;
        crate::audit!(
            Kind::LoginSucceeded,
            provider = %provider,
            user = %user,
            subject = %subject,
            session = %crate::audit::session_ref(&live.key.0),
        );
        add_cookie(
            &mut response,
            settings.cookie.set_cookie(&settings.cookie_name, &sealed, max_age),
        );
    }
    if let Some(pending) = pending_cookie {
        add_cookie(&mut response, settings.cookie.clear_cookie(pending));
    }
    Ok(response)
}

/// For a login that was asked to prove something: refuses an answer that
/// falls short (the route would refuse it anyway; this names why), and
/// finds the session a step-up raises, refusing a step-up that came back
/// as another user (the browser's session must not change hands).
async fn step_up_target(
    auth: &Auth,
    pending: &PendingLogin,
    result: &LoginResult,
) -> Result<Option<SessionKey>, AuthError> {
    let now = auth.clock().now();
    if let Some(why) = pending.ask.shortfall(&result.authentication, now, ASSURANCE_SKEW) {
        return Err(AuthError::LoginFailed(format!(
            "the login of `{}` at `{}` does not prove what was asked: {why}",
            result.subject, result.provider
        )));
    }
    let Some(key) = pending.raises.map(SessionKey) else {
        return Ok(None);
    };
    let Some((record, _)) = auth.sessions.record(&key).await? else {
        // The session ended meanwhile: this is an ordinary login.
        return Ok(None);
    };
    if record.provider != result.provider || record.subject != result.subject {
        return Err(AuthError::LoginFailed(format!(
            "the step-up of the session of `{}` came back as another user (`{}`)",
            record.subject, result.subject
        )));
    }
    Ok(Some(key))
}

/// One structured line per login: which claims came (and which were
/// blank), how many groups went in and out, and the roles that resulted.
fn log_login(auth: &Auth, result: &LoginResult, outcome: &Outcome) {
    let present: Vec<&str> = result.merged.keys().map(String::as_str).collect();
    let blank: Vec<&str> = result
        .merged
        .iter()
        .filter(|(_, v)| {
            v.is_null() || v.as_str().is_some_and(str::is_empty) || v.as_array().is_some_and(Vec::is_empty)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let groups_in = result
        .merged
        .get("groups")
        .and_then(|g| g.as_array())
        .map_or(0, Vec::len);
    tracing::info!(
        provider = %result.provider,
        user = %outcome.identity.user,
        subject = %result.subject,
        claims = ?present,
        blank = ?blank,
        groups_in,
        groups_out = outcome.identity.groups.len(),
        roles = ?outcome.identity.roles,
        refresh_token = result.tokens.refresh_token.is_some(),
        "login"
    );
    if tracing::enabled!(tracing::Level::DEBUG) {
        // IdPs omit a claim when a user has none of it: say so, quietly.
        let explained = auth.engine().global().compute(&result.merged, true);
        for reason in explained
            .reasons
            .iter()
            .filter(|r| r.rule.starts_with("claim is missing"))
        {
            tracing::debug!(user = %outcome.identity.user, part = reason.part, claim = %reason.value, "claim is missing: no values");
        }
    }
}
