//! Encrypted assertions made here with openssl, the way IdPs make them,
//! and every refusal at its exact reason.

use openssl::pkey_ctx::PkeyCtx;
use openssl::rand::rand_bytes;
use openssl::rsa::Rsa;
use openssl::symm::{encrypt, encrypt_aead};

use super::*;

const ASSERTION: &str =
    r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a">ü</saml:Assertion>"#;

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
}

/// Key transport: (algorithm, digest, mgf) URIs; None leaves it out.
struct Transport<'a>(&'a str, Option<&'a str>, Option<&'a str>);

const MGF1P: Transport<'static> = Transport("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", None, None);

fn wrap(content_key: &[u8], transport: &Transport<'_>, to: &PKey<Private>) -> String {
    let mut ctx = PkeyCtx::new(to).expect("ctx");
    ctx.encrypt_init().expect("init");
    let mut out = Vec::new();
    if transport.0.ends_with("rsa-1_5") {
        ctx.set_rsa_padding(Padding::PKCS1).expect("pad");
    } else {
        ctx.set_rsa_padding(Padding::PKCS1_OAEP).expect("pad");
        let sha256 = |uri: Option<&str>| uri.is_some_and(|u| u.contains("256"));
        ctx.set_rsa_oaep_md(if sha256(transport.1) { Md::sha256() } else { Md::sha1() })
            .expect("md");
        ctx.set_rsa_mgf1_md(if sha256(transport.2) { Md::sha256() } else { Md::sha1() })
            .expect("mgf");
    }
    ctx.encrypt_to_vec(content_key, &mut out).expect("wrap");
    let digest = transport
        .1
        .map(|d| format!(r#"<ds:DigestMethod Algorithm="{d}"/>"#))
        .unwrap_or_default();
    let mgf = transport
        .2
        .map(|m| format!(r#"<xenc11:MGF Algorithm="{m}"/>"#))
        .unwrap_or_default();
    format!(
        r#"<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{}">{digest}{mgf}</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>"#,
        transport.0,
        STANDARD.encode(out)
    )
}

/// The content encrypted under a fresh key, as an EncryptedAssertion
/// with one EncryptedKey per recipient.
fn seal(plain: &str, algorithm: &str, transport: &Transport<'_>, recipients: &[&PKey<Private>]) -> String {
    let gcm = algorithm.ends_with("gcm");
    let cipher = content_cipher(algorithm).expect("supported");
    let mut content_key = vec![0; cipher.key_len()];
    rand_bytes(&mut content_key).expect("rand");
    let mut iv = vec![0; if gcm { 12 } else { 16 }];
    rand_bytes(&mut iv).expect("rand");
    let mut data = iv.clone();
    if gcm {
        let mut tag = [0; 16];
        data.extend(encrypt_aead(cipher, &content_key, Some(&iv), &[], plain.as_bytes(), &mut tag).expect("gcm"));
        data.extend(tag);
    } else {
        data.extend(encrypt(cipher, &content_key, Some(&iv), plain.as_bytes()).expect("cbc"));
    }
    let keys: String = recipients.iter().map(|to| wrap(&content_key, transport, to)).collect();
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{algorithm}"/><ds:KeyInfo>{keys}</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion></samlp:Response>"#,
        STANDARD.encode(data)
    )
}

fn open(xml: &str, key: &PKey<Private>, signed: bool) -> Result<String, SamlError> {
    Sealed::read(xml)?.open(key, signed)
}

fn reason(result: Result<String, SamlError>) -> String {
    match result {
        Err(SamlError::Decryption(why)) => why,
        other => panic!("expected a decryption refusal, got {other:?}"),
    }
}

#[test]
fn aes_gcm_assertions_open_with_the_sp_key() {
    let sp = rsa_key();
    for algorithm in [
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    ] {
        let xml = seal(ASSERTION, algorithm, &MGF1P, &[&sp]);
        assert_eq!(open(&xml, &sp, false).as_deref(), Ok(ASSERTION), "{algorithm}");
    }
}

#[test]
fn sha256_oaep_and_mgf1_sha256_are_understood() {
    let sp = rsa_key();
    let transport = Transport(
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
        Some("http://www.w3.org/2001/04/xmlenc#sha256"),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha256"),
    );
    let xml = seal(
        ASSERTION,
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        &transport,
        &[&sp],
    );
    assert_eq!(open(&xml, &sp, false).as_deref(), Ok(ASSERTION));
}

#[test]
fn cbc_opens_only_under_a_verified_signature() {
    let sp = rsa_key();
    let xml = seal(ASSERTION, "http://www.w3.org/2001/04/xmlenc#aes256-cbc", &MGF1P, &[&sp]);
    assert!(reason(open(&xml, &sp, false)).contains("CBC is accepted only under the IdP's signature"));
    assert_eq!(open(&xml, &sp, true).as_deref(), Ok(ASSERTION));
    let xml = seal(ASSERTION, "http://www.w3.org/2001/04/xmlenc#aes128-cbc", &MGF1P, &[&sp]);
    assert_eq!(open(&xml, &sp, true).as_deref(), Ok(ASSERTION));
}

#[test]
fn pkcs1_v1_5_key_transport_is_refused() {
    let sp = rsa_key();
    let transport = Transport("http://www.w3.org/2001/04/xmlenc#rsa-1_5", None, None);
    let xml = seal(
        ASSERTION,
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        &transport,
        &[&sp],
    );
    assert_eq!(
        reason(open(&xml, &sp, true)),
        "RSA PKCS#1 v1.5 key transport is refused (use RSA-OAEP)"
    );
}

#[test]
fn another_sps_ciphertext_does_not_open() {
    let (sp, other) = (rsa_key(), rsa_key());
    let xml = seal(
        ASSERTION,
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        &MGF1P,
        &[&other],
    );
    assert_eq!(
        reason(open(&xml, &sp, false)),
        "the content key does not unwrap with the SP key"
    );
}

#[test]
fn one_of_several_wrapped_keys_is_enough() {
    let (sp, other) = (rsa_key(), rsa_key());
    let xml = seal(
        ASSERTION,
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        &MGF1P,
        &[&other, &sp],
    );
    assert_eq!(open(&xml, &sp, false).as_deref(), Ok(ASSERTION));
}

#[test]
fn a_tampered_gcm_ciphertext_is_refused() {
    let sp = rsa_key();
    let xml = seal(ASSERTION, "http://www.w3.org/2009/xmlenc11#aes128-gcm", &MGF1P, &[&sp]);
    let mut sealed = Sealed::read(&xml).expect("reads");
    let mut data = STANDARD.decode(&sealed.cipher).expect("base64");
    data[20] ^= 1;
    sealed.cipher = STANDARD.encode(data);
    assert_eq!(
        reason(sealed.open(&sp, false)),
        "the assertion does not decrypt (GCM tag mismatch)"
    );
}

#[test]
fn short_ciphertexts_are_refused_without_a_panic() {
    let sp = rsa_key();
    for algorithm in [
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    ] {
        let xml = seal(ASSERTION, algorithm, &MGF1P, &[&sp]);
        let mut sealed = Sealed::read(&xml).expect("reads");
        for len in [0, 1, 16, 27] {
            sealed.cipher = STANDARD.encode(vec![7u8; len]);
            let why = reason(sealed.open(&sp, true));
            assert!(
                why.contains("too short") || why.contains("does not decrypt"),
                "{algorithm} {len}: {why}"
            );
        }
    }
}

#[test]
fn the_shape_is_checked_before_any_key_is_used() {
    let sp = rsa_key();
    let xml = seal(ASSERTION, "http://www.w3.org/2009/xmlenc11#aes128-gcm", &MGF1P, &[&sp]);
    let two = xml.replace(
        "</saml:EncryptedAssertion>",
        "<xenc:EncryptedData/></saml:EncryptedAssertion>",
    );
    assert_eq!(
        reason(open(&two, &sp, false)),
        "2 EncryptedData elements; exactly one is accepted"
    );
    let detached = xml.replace(
        "<xenc:CipherValue>",
        "<xenc:CipherReference URI=\"x\"/><xenc:CipherValue>",
    );
    assert_eq!(
        reason(open(&detached, &sp, false)),
        "CipherReference (detached ciphertext) is not supported"
    );
    let keyless = xml.replace("EncryptedKey>", "Unrelated>");
    assert_eq!(
        reason(open(&keyless, &sp, false)),
        "no EncryptedKey (a key agreed some other way is not supported)"
    );
    let des = xml.replace(
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
    );
    assert_eq!(
        reason(open(&des, &sp, true)),
        "content encryption `http://www.w3.org/2001/04/xmlenc#tripledes-cbc` is not supported"
    );
}
