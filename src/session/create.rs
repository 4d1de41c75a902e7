//! Starting a session for a login in two steps, so that the caller decides
//! before anything is written: [`SessionManager::derive_login`] makes the
//! views the login would have (with the directory's facts about its user),
//! and [`SessionManager::create_derived`] stores a session with them. A
//! login refused on those views then leaves no session behind, not even
//! for a moment on another replica.

use std::sync::Arc;

use std::sync::atomic::Ordering;

use super::{Footprint, LiveSession, Origin, SessionId, SessionManager};
use crate::login::LoginResult;
use crate::snapshot_member::SnapshotMember;
use crate::store::directory::facts_for;
use crate::store::{SessionRecord, SessionStore, StoreError};

/// A login's views, and the cache epoch they were derived in: a reload or
/// a directory change after it makes them stale.
pub struct DerivedLogin<V> {
    pub views: V,
    epoch: u64,
}

impl<V> SessionManager<V>
where
    V: Footprint + Send + Sync + 'static,
{
    /// The views a session for `login` would have: its claims, and the
    /// directory's facts about the user `match_key` names (read now).
    pub async fn derive_login(
        &self,
        login: &LoginResult,
        match_key: Option<&str>,
    ) -> Result<DerivedLogin<V>, StoreError> {
        // Taken before the directory is read: a flush meanwhile means the
        // views may be stale, and they are then not cached.
        let epoch = self.epoch.load(Ordering::Acquire);
        let facts = match match_key {
            Some(key) => facts_for(&self.store, key).await?,
            None => None,
        };
        let origin = Origin {
            provider: &login.provider,
            issuer: &login.issuer,
            posture: &crate::access::posture::NONE,
            authentication: &login.authentication,
        };
        let derive = self.derive.load_full();
        Ok(DerivedLogin {
            views: derive(&login.merged, origin, facts.as_ref()),
            epoch,
        })
    }

    /// Stores a new session for `login` with the `views` [`Self::derive_login`]
    /// made: always a new id (no fixation). Returns the sealed cookie value.
    /// `match_key` ties the session to a directory user (SCIM), if any.
    pub async fn create_derived(
        &self,
        login: LoginResult,
        match_key: Option<String>,
        derived: DerivedLogin<V>,
    ) -> Result<(String, Arc<LiveSession<V>>), StoreError> {
        let id = SessionId::new_random();
        let key = id.key();
        let now = self.clock.now();
        let absolute = i64::try_from(self.settings.absolute_timeout.as_secs()).unwrap_or(i64::MAX);
        let record = SessionRecord {
            key,
            provider: login.provider,
            issuer: login.issuer,
            subject: login.subject,
            sid: login.idp_session,
            logout_hint: login.logout_hint,
            idp_expires_at: login.idp_session_end,
            claims: {
                let mut snapshot = login.claims;
                login.authentication.written_into(&mut snapshot);
                snapshot.to_string()
            },
            tokens: self.seal_tokens(&key, &login.tokens),
            token_expires_at: login.tokens.expires_at,
            created_at: now,
            expires_at: now.saturating_add(absolute),
            last_seen: now,
            last_refresh: now,
            match_key,
        };
        self.store.insert(&record).await?;
        let live = Arc::new(LiveSession::from_record(
            &record,
            derived.views,
            &login.tokens,
            self.settings.pass_tokens,
        ));
        self.cache_if_current(&key, &live, derived.epoch).await;
        let sealed = self.keys.load().seal_cookie(&self.settings.cookie_name, id.as_str());
        Ok((sealed, live))
    }
}
