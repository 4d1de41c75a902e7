//! Thumbprints against the openssl command line's, certificates doorward
//! makes, and the certificates it refuses.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha1::Digest as _;

use super::*;
use crate::assertion::client_key::ClientKeyAlg;

/// A P-256 key and a certificate for it, made with
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` and
/// `openssl req -new -x509 -key k.pem -subj /CN=doorward -days 36500`.
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3A2v9ORLrowndy0T
XGrZMJ5r0VcQGSjYJyggoyAYDV2hRANCAAQWfRJ/bKDlwJAcJNDXbDdvreM/OzGT
V2bU8QyFC2d1JHwAKp8MdLJz9Qkg40zki7bML/nY5nAwHHBrl//MGX7E
-----END PRIVATE KEY-----
";
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUNV9AS1LLWjECDsreC8U1x0UoTtEwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIZG9vcndhcmQwIBcNMjYxMjA3MjA1NTMyWhgPMjEyNjExMTMy
MDU1MzJaMBMxETAPBgNVBAMMCGRvb3J3YXJkMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEFn0Sf2yg5cCQHCTQ12w3b63jPzsxk1dm1PEMhQtndSR8ACqfDHSyc/UJ
IONM5Iu2zC/52OZwMBxwa5f/zBl+xKNTMFEwHQYDVR0OBBYEFHfnLJu95VYVe4Iw
UP7xhOpObpQRMB8GA1UdIwQYMBaAFHfnLJu95VYVe4IwUP7xhOpObpQRMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgQNfTf8yjmSl7Q6te/eQCV/ex
S1RO1I2sUL151NG8AUoCIANl/w9ocrUdC4AO2/ODhRrHCXwCw2Vpe9HGGPhhemhG
-----END CERTIFICATE-----
";
/// `openssl x509 -in c.crt -noout -fingerprint -sha1` and `-sha256`.
const SHA1_FINGERPRINT: &str = "25:A8:3C:5C:DB:AC:5B:D5:5C:32:77:89:06:F7:6F:CE:41:83:4E:7C";
const SHA256_FINGERPRINT: &str =
    "A7:81:DA:44:C4:D7:61:C4:A4:68:E7:F3:FA:51:C1:08:4E:B7:F1:65:CA:07:CC:B1:E1:AF:C2:5C:87:E4:D2:CA";

/// An openssl fingerprint (hex pairs) as a JWS thumbprint (base64url).
fn fingerprint_b64(hex: &str) -> String {
    let bytes: Vec<u8> = hex
        .split(':')
        .map(|pair| u8::from_str_radix(pair, 16).expect("hex"))
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn thumbprints_are_the_certificate_fingerprints_openssl_prints() {
    let key = ClientKey::from_pem(KEY, "k.pem").expect("key");
    let cert = ClientCertificate::from_pem(CERT, "c.crt", &key).expect("certificate");
    assert_eq!(cert.x5t(), fingerprint_b64(SHA1_FINGERPRINT));
    assert_eq!(cert.x5t(), "Jag8XNusW9VcMneJBvdvzkGDTnw");
    assert_eq!(cert.x5t_s256(), fingerprint_b64(SHA256_FINGERPRINT));

    // A chain file: the first certificate (the client's own) counts.
    let chain = format!(
        "{CERT}{}",
        ClientCertificate::self_signed(&key, "other", 1).expect("cert")
    );
    assert_eq!(
        ClientCertificate::from_pem(&chain, "chain.crt", &key).expect("chain"),
        cert
    );
}

#[test]
fn a_self_signed_certificate_is_made_for_every_key_type_and_read_back() {
    for alg in [ClientKeyAlg::Rs256, ClientKeyAlg::Es256, ClientKeyAlg::EdDsa] {
        let key = ClientKey::generate(alg).expect("key");
        let pem = ClientCertificate::self_signed(&key, "doorward", 365).expect("certificate");
        let x509 = X509::from_pem(pem.as_bytes()).expect("openssl reads it");
        let subject: Vec<String> = x509
            .subject_name()
            .entries()
            .map(|e| e.data().to_string().expect("utf8"))
            .collect();
        assert_eq!(subject, ["doorward"], "{alg:?}");
        let public = x509.public_key().expect("public key");
        assert!(x509.verify(&public).expect("verify"), "{alg:?}: signed by its own key");

        let cert = ClientCertificate::from_pem(&pem, "mem", &key).expect("reads back");
        // Computed apart from openssl: the digests of the DER.
        let der = x509.to_der().expect("der");
        assert_eq!(cert.x5t(), URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)), "{alg:?}");
        assert_eq!(
            cert.x5t_s256(),
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)),
            "{alg:?}"
        );
    }
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let key = ClientKey::from_pem(KEY, "k.pem").expect("key");
    for alg in [ClientKeyAlg::Es256, ClientKeyAlg::Rs256] {
        let other = ClientKey::generate(alg).expect("key");
        match ClientCertificate::from_pem(CERT, "/etc/doorward/client.crt", &other) {
            Err(e @ ClientCertificateError::OtherKey { .. }) => assert_eq!(
                e.to_string(),
                "client_certificate does not belong to client_key: /etc/doorward/client.crt certifies \
                 another public key"
            ),
            other => panic!("{alg:?}: {other:?}"),
        }
    }
    let other = ClientCertificate::self_signed(&ClientKey::generate(ClientKeyAlg::Es256).expect("key"), "x", 1)
        .expect("certificate");
    assert!(matches!(
        ClientCertificate::from_pem(&other, "x.crt", &key),
        Err(ClientCertificateError::OtherKey { .. })
    ));
}

#[test]
fn what_is_not_a_certificate_is_refused_with_its_path() {
    let key = ClientKey::from_pem(KEY, "k.pem").expect("key");
    for (pem, what) in [
        (KEY, "a private key"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "a truncated certificate",
        ),
        ("", "nothing"),
    ] {
        match ClientCertificate::from_pem(pem, "/etc/doorward/client.crt", &key) {
            Err(e @ ClientCertificateError::NotACertificate { .. }) => assert_eq!(
                e.to_string(),
                "/etc/doorward/client.crt is not an X.509 certificate in PEM"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(matches!(
        ClientCertificate::from_file(std::path::Path::new("/nonexistent/client.crt"), &key),
        Err(ClientCertificateError::Read { path, .. }) if path == "/nonexistent/client.crt"
    ));
}

#[test]
fn an_expired_or_expiring_certificate_is_warned_of() {
    assert_eq!(
        expiry_warning(-3).as_deref(),
        Some("client_certificate expired 3 days ago: the IdP will refuse its assertions")
    );
    assert_eq!(
        expiry_warning(29).as_deref(),
        Some("client_certificate expires in 29 days: register a new one at the IdP")
    );
    assert_eq!(expiry_warning(30), None);
}
