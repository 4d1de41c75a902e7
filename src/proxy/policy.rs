//! What may pass to the upstream. Forwarding takes a [`Passage`], and only
//! [`decide`] makes one, from what the admission gate said: so a request
//! path that skips the gate does not compile.

use super::route::Route;
use crate::auth::{admit, Admitted, AuthError, Caller, Refusal};
use crate::respond::Denial;

/// Proof that this request may reach the upstream, with the identity to
/// send along if the gate admitted the caller.
pub struct Passage {
    // Private: only `decide` makes one.
    admitted: Option<Admitted>,
}

impl Passage {
    /// The admitted caller; None on a public path for anyone else.
    pub fn admitted(&self) -> Option<&Admitted> {
        self.admitted.as_ref()
    }
}

/// Why a request stops here.
#[derive(Debug)]
pub enum Stop {
    /// Nobody (acceptable) is logged in: browsers go to log in.
    Login,
    /// The caller's login was not made as the route asks: browsers step
    /// up at their own provider, API clients get an RFC 9470 challenge.
    StepUp { provider: String, reason: String },
    /// Logged in, but the rules say no (the reason is for the log).
    Forbidden(Denial),
    /// doorward cannot tell who is calling right now (the store is down).
    Unavailable(AuthError),
}

/// Decides for a request on `route` with normalised `path`. Public paths
/// always pass: with the identity when the gate admits the caller, as
/// anonymous otherwise (even when the store is down). Other paths need an
/// admitted caller. `now` is the clock's, for the route's `max_age`.
pub fn decide(
    route: &Route,
    path: &str,
    recognised: Result<Option<Caller>, AuthError>,
    now: i64,
) -> Result<Passage, Stop> {
    let public = route.is_public(path);
    let caller = match recognised {
        Ok(Some(caller)) => caller,
        Ok(None) if public => return Ok(Passage { admitted: None }),
        Ok(None) => return Err(Stop::Login),
        Err(_) if public => return Ok(Passage { admitted: None }),
        Err(e) => return Err(Stop::Unavailable(e)),
    };
    match admit(&caller, &route.rules.requirements(now)) {
        Ok(admitted) => Ok(Passage {
            admitted: Some(admitted),
        }),
        Err(_) if public => Ok(Passage { admitted: None }),
        // Another provider's session: log in with the route's own.
        Err(Refusal::WrongProvider { .. }) => Err(Stop::Login),
        // A shared signal lowered the session's posture: log in again.
        Err(Refusal::StepUp(reason)) => {
            tracing::info!(account = %caller.log_name(), %reason, "sent to log in again");
            Err(Stop::Login)
        }
        Err(Refusal::Assurance(reason)) => Err(Stop::StepUp {
            provider: caller.provider().to_string(),
            reason,
        }),
        Err(refusal) => {
            crate::audit!(
                crate::audit::Kind::AccessDenied,
                route = %route.rules.name,
                provider = caller.provider(),
                user = caller.log_name(),
                rule = refusal.kind(),
                reason = %refusal,
            );
            Err(Stop::Forbidden(Denial {
                account: caller.log_name().to_string(),
                reason: refusal.to_string(),
            }))
        }
    }
}
