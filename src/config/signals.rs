//! `[[signals]]`: shared-signals transmitters (OpenID SSF 1.0, CAEP, RISC)
//! whose security events end or change the sessions of one provider's
//! users. One block per transmitter; each is bound to one `[[provider]]`,
//! because the subjects a transmitter names are that provider's users.

use serde::Deserialize;

use super::issues::{absolute_http_url, is_loopback, Issues, KeyPath, Seg};
use super::units::{HumanDuration, SecretSource, MIN_SECRET_LEN};
use super::Config;
use Seg::{Index, Key};

/// How SETs reach doorward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// RFC 8935: the transmitter POSTs each SET to doorward.
    #[default]
    Push,
    /// RFC 8936: doorward polls the transmitter.
    Poll,
}

impl Delivery {
    /// The delivery method's URN in SSF stream configurations.
    pub fn urn(self) -> &'static str {
        match self {
            Self::Push => "urn:ietf:rfc:8935",
            Self::Poll => "urn:ietf:rfc:8936",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsConfig {
    /// Names the push endpoint (`/_doorward/ssf/{name}`), metrics and logs.
    pub name: String,
    /// The transmitter: its metadata is read from
    /// `{issuer}/.well-known/ssf-configuration`, and SETs must carry it as `iss`.
    pub issuer: String,
    /// The `[[provider]]` whose users the events' subjects are.
    pub provider: String,
    /// `aud` the SETs must carry (default: `server.public_url`).
    pub audience: Option<String>,
    #[serde(default)]
    pub delivery: Delivery,
    /// The `Authorization` header value's credential the transmitter sends
    /// on push (`Bearer <token>`).
    pub push_token: Option<SecretSource>,
    /// The bearer credential doorward presents to the transmitter (stream
    /// management, polling, verification).
    pub transmitter_token: Option<SecretSource>,
    /// Where the transmitter pushes to, as it reaches doorward (default:
    /// `{public_url}{internal_prefix}/ssf/{name}`; on `[admin] listen`,
    /// when set, the path is `/ssf/{name}` there instead). Used when
    /// doorward manages the stream.
    pub push_url: Option<String>,
    /// The transmitter's poll endpoint (delivery = "poll"); with
    /// manage_stream, the one the stream configuration names is used.
    pub poll_url: Option<String>,
    /// How often to poll (delivery = "poll"); a poll also returns at once
    /// when events are waiting.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Create or update the stream at the transmitter at start and reload.
    #[serde(default)]
    pub manage_stream: bool,
    /// Event types to request (full URIs or short names such as
    /// `session-revoked`); default: every event doorward acts on.
    #[serde(default)]
    pub events: Vec<String>,
    /// SET signature algorithms accepted (never `none` or HMAC).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// How old a SET's `iat` may be; replayed `jti`s are remembered this long.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// Clock difference tolerated on `iat`.
    #[serde(default = "default_skew")]
    pub clock_skew: HumanDuration,
    /// CAEP `credential-change` ends the user's sessions.
    #[serde(default = "default_true")]
    pub end_sessions_on_credential_change: bool,
    /// How often the transmitter's metadata and keys are re-read at most.
    #[serde(default = "default_metadata_refresh")]
    pub metadata_refresh: HumanDuration,
    /// Security warning: allows an `http://` transmitter off loopback.
    #[serde(default)]
    pub insecure_allow_http_issuer: bool,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration::secs(5)
}

fn default_algorithms() -> Vec<String> {
    [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ]
    .map(String::from)
    .to_vec()
}

fn default_max_age() -> HumanDuration {
    HumanDuration::secs(24 * 3600)
}

fn default_skew() -> HumanDuration {
    HumanDuration::secs(60)
}

fn default_true() -> bool {
    true
}

fn default_metadata_refresh() -> HumanDuration {
    HumanDuration::secs(3600)
}

impl SignalsConfig {
    /// The audience SETs must name.
    pub fn audience_or<'a>(&'a self, public_url: &'a str) -> &'a str {
        self.audience.as_deref().unwrap_or(public_url)
    }
}

/// The events doorward acts on (and so requests by default), by short name.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "session-revoked",
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    ),
    (
        "credential-change",
        "https://schemas.openid.net/secevent/caep/event-type/credential-change",
    ),
    (
        "token-claims-change",
        "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
    ),
    (
        "assurance-level-change",
        "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
    ),
    (
        "device-compliance-change",
        "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
    ),
    (
        "account-disabled",
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    ),
    (
        "account-enabled",
        "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
    ),
    (
        "account-purged",
        "https://schemas.openid.net/secevent/risc/event-type/account-purged",
    ),
    (
        "credential-compromise",
        "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    ),
    (
        "identifier-changed",
        "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
    ),
    (
        "sessions-revoked",
        "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
    ),
];

/// The full URI of an event named by its short name or its URI.
pub fn event_uri(name: &str) -> Option<&'static str> {
    EVENT_TYPES
        .iter()
        .find(|(short, uri)| *short == name || *uri == name)
        .map(|(_, uri)| *uri)
}

/// Algorithms a SET may be signed with: asymmetric JWS ones only.
pub const SIGNAL_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Checks on `[[signals]]` past its types, and on the route keys that
/// only signals can act on.
pub(super) fn check(config: &Config, issues: &mut Issues) {
    for (i, route) in config.routes.iter().enumerate() {
        let at = |key: &'static str| KeyPath::of(&[Key("route"), Index(i), Key(key)]);
        let asks = !route.require_assurance.is_empty() || route.require_compliant_device;
        if asks && config.signals.is_empty() {
            issues.push((
                at(if route.require_compliant_device {
                    "require_compliant_device"
                } else {
                    "require_assurance"
                }),
                "only shared signals report a session's assurance or device: add a [[signals]] block".into(),
            ));
        }
        if route.require_assurance.iter().any(|l| l.trim().is_empty()) {
            issues.push((at("require_assurance"), "an assurance level is empty".into()));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, signals) in config.signals.iter().enumerate() {
        let at = |key: &'static str| KeyPath::of(&[Key("signals"), Index(i), Key(key)]);
        let valid_name = !signals.name.is_empty()
            && signals.name.len() <= 64
            && signals
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            issues.push((
                at("name"),
                format!("`{}`: a name is 1 to 64 letters, digits, - and _", signals.name),
            ));
        } else if !names.insert(signals.name.as_str()) {
            issues.push((at("name"), format!("`{}` names two [[signals]] blocks", signals.name)));
        }
        match absolute_http_url(&signals.issuer) {
            Err(why) => issues.push((at("issuer"), why)),
            Ok(uri)
                if uri.scheme_str() == Some("http")
                    && !is_loopback(uri.host().unwrap_or_default())
                    && !signals.insecure_allow_http_issuer =>
            {
                issues.push((
                    at("issuer"),
                    format!(
                        "`{}`: a transmitter must use https (plain http is accepted on loopback, or with \
                         insecure_allow_http_issuer)",
                        signals.issuer
                    ),
                ))
            }
            Ok(_) => {}
        }
        if !config.providers.iter().any(|p| p.name() == signals.provider) {
            issues.push((
                at("provider"),
                format!("`{}` is not a configured [[provider]]", signals.provider),
            ));
        }
        if signals.audience.is_none() && config.server.public_url.is_none() {
            issues.push((
                at("audience"),
                "set audience (or server.public_url, its default): SETs must name doorward".into(),
            ));
        }
        if signals.audience.as_deref().is_some_and(str::is_empty) {
            issues.push((at("audience"), "the audience is empty".into()));
        }
        check_secret(signals.push_token.as_ref(), "push_token", &at, issues);
        check_secret(signals.transmitter_token.as_ref(), "transmitter_token", &at, issues);
        if signals.delivery == Delivery::Push && signals.push_token.is_none() {
            issues.push((
                at("push_token"),
                "push delivery needs push_token (e.g. { env = \"DOORWARD_SSF_TOKEN\" }): the endpoint never takes \
                 events without a credential"
                    .into(),
            ));
        }
        if signals.delivery == Delivery::Poll && signals.push_token.is_some() {
            issues.push((
                at("push_token"),
                "push_token does nothing with delivery = \"poll\"".into(),
            ));
        }
        let needs_transmitter_token = signals.delivery == Delivery::Poll || signals.manage_stream;
        if needs_transmitter_token && signals.transmitter_token.is_none() {
            issues.push((
                at("transmitter_token"),
                "polling and manage_stream call the transmitter: set transmitter_token".into(),
            ));
        }
        if signals.delivery == Delivery::Poll && !signals.manage_stream && signals.poll_url.is_none() {
            issues.push((
                at("poll_url"),
                "polling a stream doorward does not manage needs poll_url (the transmitter's poll endpoint)".into(),
            ));
        }
        for (key, url) in [("push_url", &signals.push_url), ("poll_url", &signals.poll_url)] {
            if let Some(Err(why)) = url.as_deref().map(absolute_http_url) {
                issues.push((at(key), why));
            }
        }
        if signals.poll_interval.0 < std::time::Duration::from_secs(1) {
            issues.push((at("poll_interval"), "poll at most once a second".into()));
        }
        for event in &signals.events {
            if event_uri(event).is_none() {
                issues.push((
                    at("events"),
                    format!("`{event}` is not an event doorward acts on (see config.example.toml)"),
                ));
            }
        }
        if signals.algorithms.is_empty() {
            issues.push((at("algorithms"), "name at least one algorithm".into()));
        }
        for alg in &signals.algorithms {
            if !SIGNAL_ALGORITHMS.contains(&alg.as_str()) {
                issues.push((
                    at("algorithms"),
                    format!(
                        "`{alg}` is not allowed for SETs (one of {})",
                        SIGNAL_ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        if signals.max_age.0 < std::time::Duration::from_secs(60) {
            issues.push((at("max_age"), "max_age is at least a minute".into()));
        }
    }
}

fn check_secret(
    source: Option<&SecretSource>,
    key: &'static str,
    at: &dyn Fn(&'static str) -> KeyPath,
    issues: &mut Issues,
) {
    let Some(source) = source else { return };
    match source.resolve() {
        Err(e) => issues.push((at(key), e.to_string())),
        Ok(secret) if secret.expose().len() < MIN_SECRET_LEN => issues.push((
            at(key),
            format!(
                "{key} needs at least {MIN_SECRET_LEN} bytes, this one has {} (make one with `doorward keygen`)",
                secret.expose().len()
            ),
        )),
        Ok(_) => {}
    }
}

/// The settings that weaken a default.
pub(super) fn weakened(config: &Config) -> Vec<(String, &'static str)> {
    config
        .signals
        .iter()
        .enumerate()
        .filter(|(_, s)| s.insecure_allow_http_issuer)
        .map(|(i, _)| {
            (
                format!("signals[{i}].insecure_allow_http_issuer"),
                "the transmitter's metadata and keys may travel in the clear",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::load::{has_problem as has, problems_with as problems};

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_push_and_a_poll_transmitter_pass() {
        let push = format!(
            "[[signals]]\nname = \"okta\"\nissuer = \"http://127.0.0.1:9000\"\nprovider = \"idp\"\npush_token = \"{TOKEN}\"\n"
        );
        assert_eq!(problems(&push), Vec::<String>::new());
        let poll = format!(
            "[[signals]]\nname = \"ak\"\nissuer = \"http://127.0.0.1:9000\"\nprovider = \"idp\"\ndelivery = \"poll\"\n\
             transmitter_token = \"{TOKEN}\"\nmanage_stream = true\nevents = [\"session-revoked\", \
             \"https://schemas.openid.net/secevent/risc/event-type/account-disabled\"]\n"
        );
        assert_eq!(problems(&poll), Vec::<String>::new());
    }

    #[test]
    fn each_mistake_is_named_at_its_key() {
        let p = problems(
            "[[signals]]\nname = \"a b\"\nissuer = \"http://idp.example.com\"\nprovider = \"nope\"\n\
             algorithms = [\"HS256\"]\nevents = [\"made-up\"]\npush_token = \"short\"\n",
        );
        for expected in [
            "signals[0].name: `a b`: a name is",
            "signals[0].issuer: `http://idp.example.com`: a transmitter must use https",
            "signals[0].provider: `nope` is not a configured [[provider]]",
            "signals[0].algorithms: `HS256` is not allowed",
            "signals[0].events: `made-up` is not an event",
            "signals[0].push_token: push_token needs at least 32 bytes",
        ] {
            assert!(has(&p, expected), "{expected} in {p:?}");
        }
        let p = problems("[[signals]]\nname = \"a\"\nissuer = \"http://127.0.0.1:9\"\nprovider = \"idp\"\n");
        assert!(
            has(&p, "signals[0].push_token: push delivery needs push_token"),
            "{p:?}"
        );
        let p = problems(
            "[[signals]]\nname = \"a\"\nissuer = \"http://127.0.0.1:9\"\nprovider = \"idp\"\ndelivery = \"poll\"\n",
        );
        assert!(
            has(&p, "signals[0].transmitter_token: polling and manage_stream"),
            "{p:?}"
        );
        let twice = format!(
            "[[signals]]\nname = \"a\"\nissuer = \"http://127.0.0.1:9\"\nprovider = \"idp\"\npush_token = \"{TOKEN}\"\n"
        );
        let p = problems(&format!("{twice}{twice}"));
        assert!(has(&p, "signals[1].name: `a` names two [[signals]] blocks"), "{p:?}");
        let p = problems("require_compliant_device = true\n");
        assert!(
            has(&p, "route[0].require_compliant_device: only shared signals report"),
            "{p:?}"
        );
        let p = problems(&format!("require_assurance = [\"\"]\n{twice}"));
        assert!(
            has(&p, "route[0].require_assurance: an assurance level is empty"),
            "{p:?}"
        );
    }
}
