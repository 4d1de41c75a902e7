//! The SAML endpoints without an IdP: doorward's own metadata, and the
//! ACS and SLO refusing what they cannot use. The IdP's metadata is
//! never fetched here (it is read only to check a message).

use http::{Method, StatusCode};

use super::harness::{empty, form, head, header, text, TestAuth, CORP};
use crate::auth::endpoints::{handle, Endpoint};
use crate::auth::AuthError;

const SAML: &str = r#"
[[provider]]
name = "adfs"
kind = "saml"
idp_metadata_url = "https://idp.test/saml/metadata"
"#;

async fn call(
    t: &TestAuth,
    endpoint: Endpoint,
    method: Method,
    uri: &str,
    body: &str,
) -> Result<crate::respond::Reply, AuthError> {
    let parts = head(method, uri, &[("content-type", "application/x-www-form-urlencoded")]);
    handle(&t.auth, endpoint, &parts, form(body)).await
}

#[tokio::test]
async fn the_sp_metadata_names_the_acs_and_slo() {
    let t = TestAuth::new(SAML).await;
    let parts = head(Method::GET, "https://dw.test/_doorward/saml/metadata", &[]);
    let reply = handle(&t.auth, Endpoint::SamlMetadata, &parts, empty())
        .await
        .expect("metadata");
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(header(&reply, "content-type"), "application/samlmetadata+xml");
    let xml = text(reply).await;
    assert!(xml.contains("https://dw.test/_doorward/saml/acs"), "{xml}");
    assert!(xml.contains("https://dw.test/_doorward/saml/slo"), "{xml}");
    let parts = head(
        Method::GET,
        "https://dw.test/_doorward/saml/metadata?provider=nope",
        &[],
    );
    let result = handle(&t.auth, Endpoint::SamlMetadata, &parts, empty()).await;
    assert!(matches!(result, Err(AuthError::NotFound)));
}

#[tokio::test]
async fn without_a_saml_provider_there_is_no_metadata() {
    let t = TestAuth::new(CORP).await;
    let parts = head(Method::GET, "https://dw.test/_doorward/saml/metadata", &[]);
    let result = handle(&t.auth, Endpoint::SamlMetadata, &parts, empty()).await;
    assert!(matches!(result, Err(AuthError::NotFound)));
}

#[tokio::test]
async fn the_acs_refuses_a_form_without_a_response() {
    let t = TestAuth::new(SAML).await;
    let result = call(
        &t,
        Endpoint::SamlAcs,
        Method::POST,
        "https://dw.test/_doorward/saml/acs",
        "RelayState=x",
    )
    .await;
    assert!(matches!(result, Err(AuthError::BadRequest("no SAMLResponse"))));
}

#[tokio::test]
async fn the_acs_refuses_a_response_it_cannot_verify() {
    let t = TestAuth::new(SAML).await;
    let result = call(
        &t,
        Endpoint::SamlAcs,
        Method::POST,
        "https://dw.test/_doorward/saml/acs",
        "SAMLResponse=bm90IHhtbA%3D%3D",
    )
    .await;
    match result {
        Err(AuthError::LoginFailed(why)) => {
            assert!(why.starts_with("SAML response for provider `adfs` refused: "), "{why}");
        }
        other => panic!("expected LoginFailed, got {:?}", other.map(|r| r.status())),
    }
    // Nothing was stored for it.
    assert_eq!(t.auth.sessions.cached_count().await, 0);
}

#[tokio::test]
async fn the_slo_refuses_what_it_cannot_use() {
    let t = TestAuth::new(SAML).await;
    let result = call(
        &t,
        Endpoint::SamlSlo,
        Method::POST,
        "https://dw.test/_doorward/saml/slo",
        "",
    )
    .await;
    assert!(matches!(
        result,
        Err(AuthError::BadRequest("no SAMLRequest or SAMLResponse"))
    ));
    let result = call(
        &t,
        Endpoint::SamlSlo,
        Method::POST,
        "https://dw.test/_doorward/saml/slo",
        "SAMLRequest=bm90IHhtbA%3D%3D",
    )
    .await;
    assert!(
        matches!(result, Err(AuthError::BadLogoutToken(_))),
        "{:?}",
        result.map(|r| r.status())
    );
    let result = call(
        &t,
        Endpoint::SamlSlo,
        Method::GET,
        "https://dw.test/_doorward/saml/slo?SAMLResponse=bm90",
        "",
    )
    .await;
    match result {
        Err(AuthError::LoginFailed(why)) => assert!(why.starts_with("SAML LogoutResponse refused: "), "{why}"),
        other => panic!("expected LoginFailed, got {:?}", other.map(|r| r.status())),
    }
}
