//! Group overage: when an IdP sends a reference to the groups instead of
//! the groups (Entra ID past 200), the identity engine notices and, if the
//! operator allows, the provider fetches the distributed claim.

use super::Auth;
use crate::login::LoginResult;
use crate::oidc::OidcProvider;

impl Auth {
    /// Fills in a distributed groups claim, or says why it could not.
    pub(super) async fn resolve_overage(&self, provider: &OidcProvider, login: &mut LoginResult) {
        let Some(overage) = self.engine().global().compute(&login.merged, false).overage else {
            return;
        };
        let user = login.merged.get("email").or_else(|| login.merged.get("sub")).cloned();
        match (&overage.endpoint, overage.fetch, login.tokens.access_token.as_deref()) {
            (Some(endpoint), true, Some(token)) => {
                match provider.fetch_distributed_claim(endpoint, token, &overage.claim).await {
                    Ok(value) => {
                        login.merged.insert(overage.claim.clone(), value);
                        if let Some(merged) = login.claims.get_mut("merged") {
                            *merged = serde_json::Value::Object(login.merged.clone());
                        }
                    }
                    Err(e) => tracing::warn!(
                        ?user,
                        claim = %overage.claim,
                        error = %e,
                        "group overage: fetching the distributed claim failed; no groups come from it"
                    ),
                }
            }
            (_, false, _) => tracing::warn!(
                ?user,
                claim = %overage.claim,
                "group overage: the IdP sent a distributed claim instead of the groups; \
                 set [identity.groups] overage = true to fetch it"
            ),
            _ => tracing::warn!(
                ?user,
                claim = %overage.claim,
                "group overage: no endpoint or access token to fetch the distributed claim"
            ),
        }
    }
}
