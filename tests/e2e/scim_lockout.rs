//! SCIM's lockout counts failures per client, not per ingress: behind a
//! trusted proxy the client is read from X-Forwarded-For, so clients that
//! fail behind the same proxy lock out only themselves.

use crate::scenario::{Options, Scenario};
use crate::scim::{scim_config, ScimClient};

#[tokio::test]
async fn ten_bad_scim_credentials_through_a_trusted_proxy_do_not_lock_out_the_idps_valid_one() {
    let s = Scenario::start(Options {
        server: "trusted_proxies = [\"127.0.0.1/32\"]".into(),
        extra: scim_config("merged"),
        ..Options::default()
    })
    .await;
    let idp = ScimClient::of(&s.base);
    let mut wrong = idp.clone();
    wrong.token = "wrong-token".into();
    // The proxy (127.0.0.1) appends each client's address.
    let attacker = [("x-forwarded-for", "203.0.113.9")];
    for _ in 0..10 {
        let answer = wrong.send_with("GET", "/Users", None, &attacker).await;
        assert_eq!(answer.status, 401);
    }
    let locked = wrong.send_with("GET", "/Users", None, &attacker).await;
    assert_eq!(locked.status, 429, "the failing client is locked out");

    let from_idp = [("x-forwarded-for", "198.51.100.1")];
    let answer = idp.send_with("GET", "/Users", None, &from_idp).await;
    assert_eq!(answer.status, 200, "the IdP's valid credential: {}", answer.body);
    // A client's own line further left cannot pose as another client.
    let posing = [("x-forwarded-for", "198.51.100.1, 203.0.113.9")];
    assert_eq!(wrong.send_with("GET", "/Users", None, &posing).await.status, 429);
}
