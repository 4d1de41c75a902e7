//! The one module that owns identity headers: it removes every incoming
//! copy of them and sets the computed ones. Nothing else touches these
//! names.
//!
//! A client must never be able to pass its own `X-Forwarded-User` through:
//! every letter case, every duplicate and the underscore spelling
//! (`X_Forwarded_User`, which some stacks read as the dashed name) are
//! removed, on every route, method and path, before anything else runs.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::HeaderNames;
use crate::identity::{header_list, Identity};

/// A set of header names compared the way a lenient upstream would read
/// them: ignoring ASCII case and treating `_` as `-`.
#[derive(Debug, Clone, Default)]
pub struct FoldedNames {
    folded: Vec<Box<[u8]>>,
}

impl FoldedNames {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut folded: Vec<Box<[u8]>> = names
            .into_iter()
            .map(|n| n.bytes().map(fold).collect::<Vec<u8>>().into_boxed_slice())
            .collect();
        folded.sort();
        folded.dedup();
        Self { folded }
    }

    pub fn contains(&self, name: &str) -> bool {
        let name = name.as_bytes();
        self.folded
            .iter()
            .any(|f| f.len() == name.len() && f.iter().zip(name).all(|(a, b)| *a == fold(*b)))
    }

    /// Removes every header in `headers` whose name is in the set. Header
    /// maps store names lower-cased, so case variants share one entry and
    /// `remove` takes every duplicate at once.
    pub fn strip(&self, headers: &mut HeaderMap) {
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| self.contains(name.as_str()))
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(&name);
        }
    }
}

fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

/// Encoded identity headers, ready to copy onto a request. Made once per
/// session (or bearer token), not per request.
pub type EncodedIdentity = Arc<Vec<(HeaderName, HeaderValue)>>;

/// The identity header names of this deployment.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    names: FoldedNames,
    user: Option<HeaderName>,
    email: Option<HeaderName>,
    preferred_username: Option<HeaderName>,
    groups: Option<HeaderName>,
    roles: Option<HeaderName>,
    role: Option<HeaderName>,
    orgs: Option<HeaderName>,
    idp: Option<HeaderName>,
    acr: Option<HeaderName>,
    amr: Option<HeaderName>,
    /// Set every header, empty when there is no value: with HTTP message
    /// signatures each is covered, so one added downstream breaks them.
    every_name: bool,
}

impl IdentityHeaders {
    /// Names only: strips them, sets nothing (tests and tools).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            names: FoldedNames::new(names),
            user: None,
            email: None,
            preferred_username: None,
            groups: None,
            roles: None,
            role: None,
            orgs: None,
            idp: None,
            acr: None,
            amr: None,
            every_name: false,
        }
    }

    pub fn from_config(config: &HeaderNames) -> Self {
        let parse = |name: &str| HeaderName::from_bytes(name.as_bytes()).ok();
        Self {
            names: FoldedNames::new(config.all()),
            user: parse(&config.user),
            email: parse(&config.email),
            preferred_username: parse(&config.preferred_username),
            groups: parse(&config.groups),
            roles: parse(&config.roles),
            role: parse(&config.role),
            orgs: parse(&config.orgs),
            idp: parse(&config.idp),
            acr: parse(&config.acr),
            amr: parse(&config.amr),
            every_name: config.http_message_signatures,
        }
    }

    /// The names the upstream receives identity in (for signatures).
    pub fn set_names(&self) -> Vec<HeaderName> {
        [
            &self.user,
            &self.email,
            &self.preferred_username,
            &self.groups,
            &self.roles,
            &self.role,
            &self.orgs,
            &self.idp,
            &self.acr,
            &self.amr,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    /// Step 3 of the request path: no incoming identity survives.
    pub fn strip_incoming(&self, headers: &mut HeaderMap) {
        self.names.strip(headers);
    }

    /// Encodes an identity for the upstream. Lists use the
    /// [`header_list`] encoding, so no value can break the header.
    pub fn encode(&self, identity: &Identity) -> EncodedIdentity {
        let mut out = Vec::with_capacity(11);
        let every_name = self.every_name;
        let mut push = |name: &Option<HeaderName>, value: Option<String>| {
            let value = match value {
                Some(value) => value,
                None if every_name => String::new(),
                None => return,
            };
            if let (Some(name), Ok(value)) = (name, HeaderValue::from_str(&value)) {
                out.push((name.clone(), value));
            }
        };
        push(&self.user, Some(header_list::encode_item(&identity.user)));
        push(&self.email, identity.email.as_deref().map(header_list::encode_item));
        push(
            &self.preferred_username,
            identity.preferred_username.as_deref().map(header_list::encode_item),
        );
        push(&self.groups, Some(header_list::encode(&identity.groups)));
        push(&self.roles, Some(header_list::encode(&identity.roles)));
        push(&self.role, identity.role.as_deref().map(header_list::encode_item));
        push(&self.orgs, Some(header_list::encode(&identity.orgs)));
        push(
            &self.idp,
            (!identity.idp.is_empty()).then(|| header_list::encode_item(&identity.idp)),
        );
        let authentication = &identity.authentication;
        push(&self.acr, authentication.acr.as_deref().map(header_list::encode_item));
        push(
            &self.amr,
            (!authentication.amr.is_empty()).then(|| header_list::encode(&authentication.amr)),
        );
        Arc::new(out)
    }
}

/// Sets an admitted identity's headers (after
/// [`IdentityHeaders::strip_incoming`] has run on the same map). The
/// encoded block only comes from `auth::Admitted::headers`.
pub fn set(headers: &mut HeaderMap, encoded: &EncodedIdentity) {
    for (name, value) in encoded.iter() {
        headers.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn strips_every_spelling_and_duplicate() {
        let ids = IdentityHeaders::new(["X-Forwarded-User", "X-Forwarded-Groups"]);
        let mut headers = HeaderMap::new();
        for name in [
            "x-forwarded-user",
            "X-FORWARDED-USER",
            "x_forwarded_user",
            "X_Forwarded_Groups",
            "accept",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("valid name");
            headers.append(name, HeaderValue::from_static("mallory"));
        }
        ids.strip_incoming(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn near_names_are_kept() {
        let ids = IdentityHeaders::new(["X-Forwarded-User"]);
        assert!(!ids.names.contains("x-forwarded-users"));
        assert!(!ids.names.contains("x-forwarded-use"));
        assert!(ids.names.contains("x_forwarded-user"));
    }
}
