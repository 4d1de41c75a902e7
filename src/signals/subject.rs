//! Whom a security event is about: RFC 9493 subject identifiers and SSF
//! 1.0's complex subjects (§3.2), parsed into types the receiver matches
//! against its sessions and directory.
//!
//! The receiver acts on a subject's `user` and `session`; the other members
//! of a complex subject (device, tenant, ...) are only recorded as present,
//! and their formats are not checked, so a transmitter's vendor format for
//! a device cannot make doorward drop a `session-revoked` about the user.

use serde_json::{Map, Value};

/// One simple subject identifier (RFC 9493 §3, SSF 1.0 §3.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectId {
    /// `email`: an address, compared case-insensitively by the caller.
    Email(String),
    /// `iss_sub`: a subject at an issuer, the OIDC way.
    IssSub { iss: String, sub: String },
    /// `opaque`: an identifier only the transmitter and receiver understand
    /// (SSF uses it for session ids).
    Opaque(String),
    /// `phone_number`: E.164.
    PhoneNumber(String),
    /// `account`: an `acct:` URI (RFC 7565).
    Account(String),
    /// `did`: a decentralised identifier URL.
    Did(String),
    /// `uri`: any URI.
    Uri(String),
    /// `jwt_id` (SSF 1.0): a JWT by issuer and `jti`.
    JwtId { iss: String, jti: String },
    /// `saml_assertion_id` (SSF 1.0): a SAML assertion by issuer and ID.
    SamlAssertionId { issuer: String, assertion_id: String },
    /// `aliases`: several identifiers of one subject (never nested).
    Aliases(Vec<SubjectId>),
}

/// The members of a complex subject doorward does not act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Device,
    Tenant,
    Application,
    OrgUnit,
    Group,
}

impl Facet {
    const ALL: [(&'static str, Facet); 5] = [
        ("device", Facet::Device),
        ("tenant", Facet::Tenant),
        ("application", Facet::Application),
        ("org_unit", Facet::OrgUnit),
        ("group", Facet::Group),
    ];
}

/// A SET's subject. A simple identifier is the `user`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub user: Option<SubjectId>,
    pub session: Option<SubjectId>,
    /// Other complex-subject members that were present (for the log).
    pub facets: Vec<Facet>,
}

/// Why a subject was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("the subject is not a JSON object")]
    NotAnObject,
    #[error("subject format `{0}` is not supported")]
    UnknownFormat(String),
    #[error("subject format `{format}` needs a non-empty string member `{member}`")]
    MissingMember { format: &'static str, member: &'static str },
    #[error("`aliases` needs a non-empty `identifiers` list without nested aliases")]
    BadAliases,
    #[error("a complex subject names none of user, session, device, tenant, application, org_unit, group")]
    EmptyComplex,
}

impl Subject {
    /// Parses a `sub_id` (or an event's `subject`): a simple identifier
    /// (with `format`) or a complex subject (without one; older drafts said
    /// `"format": "complex"`).
    pub fn parse(value: &Value) -> Result<Self, SubjectError> {
        let object = value.as_object().ok_or(SubjectError::NotAnObject)?;
        match object.get("format") {
            None => Self::complex(object),
            Some(Value::String(format)) if format == "complex" => Self::complex(object),
            Some(_) => Ok(Subject {
                user: Some(SubjectId::parse(value)?),
                ..Subject::default()
            }),
        }
    }

    fn complex(object: &Map<String, Value>) -> Result<Self, SubjectError> {
        let member = |name: &str| object.get(name).map(SubjectId::parse).transpose();
        let subject = Subject {
            user: member("user")?,
            session: member("session")?,
            facets: Facet::ALL
                .iter()
                .filter(|(name, _)| object.contains_key(*name))
                .map(|(_, facet)| *facet)
                .collect(),
        };
        if subject.user.is_none() && subject.session.is_none() && subject.facets.is_empty() {
            return Err(SubjectError::EmptyComplex);
        }
        Ok(subject)
    }
}

impl SubjectId {
    /// One simple identifier, by its `format`.
    pub fn parse(value: &Value) -> Result<Self, SubjectError> {
        Self::parse_nested(value, true)
    }

    fn parse_nested(value: &Value, aliases_allowed: bool) -> Result<Self, SubjectError> {
        let object = value.as_object().ok_or(SubjectError::NotAnObject)?;
        let format = match object.get("format") {
            Some(Value::String(format)) => format.as_str(),
            _ => {
                return Err(SubjectError::MissingMember {
                    format: "any",
                    member: "format",
                })
            }
        };
        let text = |format: &'static str, member: &'static str| {
            object
                .get(member)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or(SubjectError::MissingMember { format, member })
        };
        Ok(match format {
            "email" => SubjectId::Email(text("email", "email")?),
            "iss_sub" => SubjectId::IssSub {
                iss: text("iss_sub", "iss")?,
                sub: text("iss_sub", "sub")?,
            },
            "opaque" => SubjectId::Opaque(text("opaque", "id")?),
            "phone_number" => SubjectId::PhoneNumber(text("phone_number", "phone_number")?),
            "account" => SubjectId::Account(text("account", "uri")?),
            "did" => SubjectId::Did(text("did", "url")?),
            "uri" => SubjectId::Uri(text("uri", "uri")?),
            "jwt_id" => SubjectId::JwtId {
                iss: text("jwt_id", "iss")?,
                jti: text("jwt_id", "jti")?,
            },
            "saml_assertion_id" => SubjectId::SamlAssertionId {
                issuer: text("saml_assertion_id", "issuer")?,
                assertion_id: text("saml_assertion_id", "assertion_id")?,
            },
            // RFC 9493 §3.2.9: aliases hold simple identifiers, never
            // aliases (which would let one subject nest without bound).
            "aliases" if aliases_allowed => {
                let list = object
                    .get("identifiers")
                    .and_then(Value::as_array)
                    .filter(|list| !list.is_empty())
                    .ok_or(SubjectError::BadAliases)?;
                let ids = list
                    .iter()
                    .map(|id| Self::parse_nested(id, false))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| match e {
                        SubjectError::UnknownFormat(f) if f == "aliases" => SubjectError::BadAliases,
                        other => other,
                    })?;
                SubjectId::Aliases(ids)
            }
            other => return Err(SubjectError::UnknownFormat(clip(other))),
        })
    }
}

/// A value from the token, cut short for a log line.
pub(super) fn clip(text: &str) -> String {
    const MAX: usize = 128;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(value: Value) -> Result<SubjectId, SubjectError> {
        SubjectId::parse(&value)
    }

    #[test]
    fn every_simple_format_parses() {
        let cases = [
            (
                json!({"format": "email", "email": "a@x.test"}),
                SubjectId::Email("a@x.test".into()),
            ),
            (
                json!({"format": "iss_sub", "iss": "https://idp", "sub": "alice"}),
                SubjectId::IssSub {
                    iss: "https://idp".into(),
                    sub: "alice".into(),
                },
            ),
            (
                json!({"format": "opaque", "id": "s-1"}),
                SubjectId::Opaque("s-1".into()),
            ),
            (
                json!({"format": "phone_number", "phone_number": "+12065550100"}),
                SubjectId::PhoneNumber("+12065550100".into()),
            ),
            (
                json!({"format": "account", "uri": "acct:a@x.test"}),
                SubjectId::Account("acct:a@x.test".into()),
            ),
            (
                json!({"format": "did", "url": "did:example:123"}),
                SubjectId::Did("did:example:123".into()),
            ),
            (
                json!({"format": "uri", "uri": "https://x.test/u/1"}),
                SubjectId::Uri("https://x.test/u/1".into()),
            ),
            (
                json!({"format": "jwt_id", "iss": "https://idp", "jti": "j"}),
                SubjectId::JwtId {
                    iss: "https://idp".into(),
                    jti: "j".into(),
                },
            ),
            (
                json!({"format": "saml_assertion_id", "issuer": "https://idp", "assertion_id": "_a"}),
                SubjectId::SamlAssertionId {
                    issuer: "https://idp".into(),
                    assertion_id: "_a".into(),
                },
            ),
            (
                json!({"format": "aliases", "identifiers": [
                    {"format": "email", "email": "a@x.test"}, {"format": "opaque", "id": "u1"}]}),
                SubjectId::Aliases(vec![
                    SubjectId::Email("a@x.test".into()),
                    SubjectId::Opaque("u1".into()),
                ]),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(id(value.clone()), Ok(expected), "{value}");
        }
    }

    #[test]
    fn malformed_simple_subjects_are_refused_with_their_reason() {
        assert_eq!(
            id(json!({"format": "x509", "x": 1})),
            Err(SubjectError::UnknownFormat("x509".into()))
        );
        assert_eq!(
            id(json!({"format": "iss_sub", "iss": "https://idp"})),
            Err(SubjectError::MissingMember {
                format: "iss_sub",
                member: "sub"
            })
        );
        assert_eq!(
            id(json!({"format": "email", "email": ""})),
            Err(SubjectError::MissingMember {
                format: "email",
                member: "email"
            })
        );
        assert_eq!(
            id(json!({"format": "opaque", "id": 7})),
            Err(SubjectError::MissingMember {
                format: "opaque",
                member: "id"
            })
        );
        assert_eq!(
            id(json!({"email": "a@x.test"})),
            Err(SubjectError::MissingMember {
                format: "any",
                member: "format"
            })
        );
        assert_eq!(id(json!("alice")), Err(SubjectError::NotAnObject));
        assert_eq!(
            id(json!({"format": "aliases", "identifiers": []})),
            Err(SubjectError::BadAliases)
        );
        let nested = json!({"format": "aliases", "identifiers": [
            {"format": "aliases", "identifiers": [{"format": "opaque", "id": "u"}]}]});
        assert_eq!(id(nested), Err(SubjectError::BadAliases));
    }

    #[test]
    fn a_simple_subject_is_the_user_and_a_complex_one_keeps_user_and_session() {
        let simple = Subject::parse(&json!({"format": "opaque", "id": "u1"})).expect("simple");
        assert_eq!(simple.user, Some(SubjectId::Opaque("u1".into())));
        assert_eq!(simple.session, None);
        let complex = Subject::parse(&json!({
            "user": {"format": "iss_sub", "iss": "https://idp", "sub": "alice"},
            "session": {"format": "opaque", "id": "sid-1"},
            "device": {"format": "vendor-specific", "serial": "x"},
            "tenant": {"format": "opaque", "id": "t"},
        }))
        .expect("complex");
        assert_eq!(
            complex.user,
            Some(SubjectId::IssSub {
                iss: "https://idp".into(),
                sub: "alice".into()
            })
        );
        assert_eq!(complex.session, Some(SubjectId::Opaque("sid-1".into())));
        assert_eq!(complex.facets, vec![Facet::Device, Facet::Tenant]);
        // The drafts' explicit `complex` format means the same.
        let drafted = Subject::parse(&json!({"format": "complex", "session": {"format": "opaque", "id": "s"}}))
            .expect("draft complex");
        assert_eq!(drafted.session, Some(SubjectId::Opaque("s".into())));
        assert_eq!(drafted.user, None);
    }

    #[test]
    fn complex_subjects_are_checked_where_doorward_acts() {
        assert_eq!(Subject::parse(&json!({})), Err(SubjectError::EmptyComplex));
        assert_eq!(
            Subject::parse(&json!({"user": {"format": "nope"}})),
            Err(SubjectError::UnknownFormat("nope".into()))
        );
        assert_eq!(
            Subject::parse(&json!({"session": {"format": "opaque"}})),
            Err(SubjectError::MissingMember {
                format: "opaque",
                member: "id"
            })
        );
        assert_eq!(Subject::parse(&json!([1])), Err(SubjectError::NotAnObject));
    }

    #[test]
    fn clipped_values_stay_short() {
        let long = "é".repeat(200);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), 129);
        assert_eq!(clip("short"), "short");
    }
}
