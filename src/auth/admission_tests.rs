//! The gate, refusal by refusal: each rule shown refusing with its exact
//! variant, and route rules shown tightening, never widening.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::auth::caller::BearerLogin;
use crate::auth::view::ViewBuilder;
use crate::identity::IdentityEngine;
use crate::identity_headers::IdentityHeaders;
use crate::session::Origin;
use crate::store::directory::DirectoryFacts;

const CONFIG: &str = r#"
[server]
public_url = "https://dw.test"
[session]
keys = ["0123456789abcdef0123456789abcdef-admission"]
[[provider]]
name = "corp"
kind = "oidc"
issuer = "https://idp.test"
client_id = "doorward"

[identity.login]
allowed_groups = ["staff", "admins"]

[[route]]
name = "open"
upstream = "http://127.0.0.1:1"

[[route]]
name = "admins-only"
path_prefix = "/admin"
upstream = "http://127.0.0.1:1"
require_roles = ["admin"]
[route.identity.login]
allowed_groups = ["admins"]
[route.identity.roles]
from_groups = ["admin"]

[[route]]
name = "pinned"
path_prefix = "/pinned"
upstream = "http://127.0.0.1:1"
provider = "corp"

[[route]]
name = "step-up"
path_prefix = "/payroll"
upstream = "http://127.0.0.1:1"
acr = ["urn:mfa", "urn:phr"]
max_age = "15m"
"#;

struct World {
    views: ViewBuilder,
    rules: Vec<RouteRules>,
}

fn world() -> World {
    let config = crate::config::parse_str(CONFIG, "test.toml").expect("config");
    let engine = Arc::new(IdentityEngine::from_config(&config).expect("engine"));
    let rules = RouteRules::from_config(&config, Some(&engine));
    World {
        views: ViewBuilder::new(engine, IdentityHeaders::from_config(&config.headers)),
        rules,
    }
}

fn caller(world: &World, provider: &str, groups: &[&str]) -> Caller {
    caller_with(world, provider, groups, None)
}

fn caller_with(world: &World, provider: &str, groups: &[&str], facts: Option<&DirectoryFacts>) -> Caller {
    authenticated_caller(world, provider, groups, facts, &crate::login::Authentication::default())
}

fn authenticated_caller(
    world: &World,
    provider: &str,
    groups: &[&str],
    facts: Option<&DirectoryFacts>,
    authentication: &crate::login::Authentication,
) -> Caller {
    let claims = json!({"sub": "u1", "email": "u1@example.com", "groups": groups});
    let claims = claims.as_object().cloned().unwrap_or_default();
    let origin = Origin {
        provider,
        issuer: "https://idp.test",
        posture: &crate::access::posture::NONE,
        authentication,
    };
    Caller::Bearer(Arc::new(BearerLogin {
        views: world.views.build(&claims, origin, facts),
        provider: provider.to_string(),
        expires_at: i64::MAX,
        keys_generation: 0,
        directory_generation: 0,
        passed_tokens: None,
    }))
}

#[test]
fn an_allowed_caller_is_admitted_with_its_provider_in_the_identity() {
    let w = world();
    let admitted = admit(&caller(&w, "corp", &["staff"]), &w.rules[0].requirements(0)).expect("admitted");
    assert_eq!(admitted.identity().idp, "corp");
    assert_eq!(admitted.identity().idp_issuer, "https://idp.test");
    assert!(admitted
        .headers()
        .iter()
        .any(|(name, value)| name == "x-forwarded-idp" && value == "corp"));
}

#[test]
fn the_global_login_policy_refuses_on_every_route_and_endpoint() {
    let w = world();
    let sales = caller(&w, "corp", &["sales"]);
    for needs in [
        Requirements::default(),
        w.rules[0].requirements(0),
        w.rules[2].requirements(0),
    ] {
        assert_eq!(
            admit(&sales, &needs).err(),
            Some(Refusal::NotAllowed(
                "user `u1@example.com`: holds none of login.allowed_groups".into()
            ))
        );
    }
}

#[test]
fn route_login_rules_tighten_and_never_widen() {
    let w = world();
    // Allowed globally (staff) but not by the route's own list (admins).
    let staff = caller(&w, "corp", &["staff"]);
    assert!(matches!(
        admit(&staff, &w.rules[1].requirements(0)),
        Err(Refusal::NotAllowed(reason)) if reason.contains("route `admins-only`")
    ));
    // In the route's list and the global one, with the required role.
    let admin = caller(&w, "corp", &["admins", "admin"]);
    assert!(admit(&admin, &w.rules[1].requirements(0)).is_ok());
}

#[test]
fn required_roles_and_groups_are_enforced() {
    let w = world();
    let admins_without_role = caller(&w, "corp", &["admins"]);
    assert_eq!(
        admit(&admins_without_role, &w.rules[1].requirements(0)).err(),
        Some(Refusal::MissingGrant(
            "user `u1@example.com` holds none of route `admins-only` require_roles".into()
        ))
    );
}

#[test]
fn a_pinned_route_refuses_callers_from_another_provider() {
    let w = world();
    let other = caller(&w, "partner", &["staff"]);
    assert_eq!(
        admit(&other, &w.rules[2].requirements(0)).err(),
        Some(Refusal::WrongProvider {
            pinned: "corp".into(),
            caller: "partner".into()
        })
    );
    assert!(admit(&caller(&w, "corp", &["staff"]), &w.rules[2].requirements(0)).is_ok());
}

#[test]
fn directory_groups_count_and_a_deactivated_user_is_refused() {
    let w = world();
    let facts = DirectoryFacts {
        user_id: "u1".into(),
        active: true,
        groups: vec!["admins".into()],
        resource: r#"{"urn:ietf:params:scim:schemas:extension:doorward:2.0:User": {"roles": ["admin"]}}"#.into(),
    };
    // No group in the claims: the directory's admins group and admin role
    // let the user onto the admins-only route.
    let provisioned = caller_with(&w, "corp", &[], Some(&facts));
    let admitted = admit(&provisioned, &w.rules[1].requirements(0)).expect("admitted");
    assert_eq!(admitted.identity().groups, ["admins"]);
    assert_eq!(admitted.identity().roles, ["admin"]);
    let deactivated = DirectoryFacts { active: false, ..facts };
    let refused = caller_with(&w, "corp", &["staff", "admins"], Some(&deactivated));
    assert_eq!(
        admit(&refused, &w.rules[0].requirements(0)).err(),
        Some(Refusal::NotAllowed(
            "user `u1@example.com`: deactivated in the SCIM directory".into()
        ))
    );
}

#[test]
fn a_login_weaker_or_older_than_the_route_asks_is_sent_to_step_up_and_a_strong_one_passes() {
    let w = world();
    let now = 100_000;
    let login = |acr: Option<&str>, age: i64| crate::login::Authentication {
        acr: acr.map(str::to_string),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: Some(now - age),
    };
    let step_up = &w.rules[3];
    let strong = authenticated_caller(&w, "corp", &["staff"], None, &login(Some("urn:phr"), 60));
    let admitted = admit(&strong, &step_up.requirements(now)).expect("admitted");
    // The assurance travels: headers and the identity the assertion signs.
    let headers = admitted.headers();
    assert!(headers.iter().any(|(n, v)| n == "x-forwarded-acr" && v == "urn:phr"));
    assert!(
        headers.iter().any(|(n, v)| n == "x-forwarded-amr" && v == "pwd,otp"),
        "{headers:?}"
    );
    assert_eq!(admitted.identity().authentication.auth_time, Some(now - 60));

    let weak = authenticated_caller(&w, "corp", &["staff"], None, &login(Some("urn:pwd"), 60));
    assert_eq!(
        admit(&weak, &step_up.requirements(now)).err(),
        Some(Refusal::Assurance(
            "user `u1@example.com` on route `step-up`: the login's acr `urn:pwd` is not one of those asked for (`urn:mfa`, `urn:phr`)".into()
        ))
    );
    // The other routes do not ask: the weak login passes there.
    assert!(admit(&weak, &w.rules[0].requirements(now)).is_ok());
    let stale = authenticated_caller(
        &w,
        "corp",
        &["staff"],
        None,
        &login(Some("urn:mfa"), 901 + ASSURANCE_SKEW),
    );
    assert!(matches!(
        admit(&stale, &step_up.requirements(now)),
        Err(Refusal::Assurance(reason)) if reason.ends_with("max_age is 900 s")
    ));
    // A user the route refuses anyway is refused, not sent to step up.
    let outsider = authenticated_caller(&w, "corp", &["sales"], None, &login(Some("urn:pwd"), 60));
    assert!(matches!(
        admit(&outsider, &step_up.requirements(now)),
        Err(Refusal::NotAllowed(_))
    ));
}
