//! Checks on what the control plane answers, before a certificate is used.

use std::time::Duration;

use super::*;
use crate::tests::ca::{MESH, TestCa};

const HOUR: Duration = Duration::from_secs(3600);

fn check(
    response: CertificateResponse,
    key: &KeyPair,
    roots: &TrustBundle,
) -> Result<Credentials, String> {
    credentials(
        response,
        key,
        MESH,
        "ca-1",
        roots,
        &mut fastrand::Rng::new(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_good_answer_becomes_credentials() {
    let ca = TestCa::new("CA");
    let (key, csr) = key_and_csr(MESH, "web-1", &["web".into(), "web-admin".into()]).unwrap();
    let credentials = check(
        ca.sign(&csr, HOUR, None).unwrap(),
        &key,
        &TrustBundle::default(),
    )
    .unwrap();
    assert_eq!(
        credentials.spiffe_ids,
        ["spiffe://default/web", "spiffe://default/web-admin"]
    );
    assert_eq!(credentials.issuer_id, "ca-1");
    assert_eq!(credentials.bundle.as_ref(), ca.bundle().as_ref());
    let remaining = credentials
        .not_after
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(remaining > HOUR - Duration::from_secs(5), "{remaining:?}");
    let debug = format!("{credentials:?}");
    assert!(!debug.contains("key"), "{debug}");
}

#[test]
fn every_request_gets_a_new_key() {
    let (a, _) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let (b, _) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    assert_ne!(a.public_key_pem(), b.public_key_pem());
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let ca = TestCa::new("CA");
    let (_, csr) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let (other_key, _) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let error = check(
        ca.sign(&csr, HOUR, None).unwrap(),
        &other_key,
        &TrustBundle::default(),
    )
    .unwrap_err();
    assert_eq!(
        error,
        "invalid certificate from the control plane: the certificate is not for the key of the CSR"
    );
}

#[test]
fn a_certificate_that_does_not_chain_to_the_bundle_is_refused() {
    let (ca, other) = (TestCa::new("CA"), TestCa::new("other"));
    let (key, csr) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let mut response = ca.sign(&csr, HOUR, None).unwrap();
    response.trust_bundle_pem = other.pem().to_owned();
    let error = check(response, &key, &TrustBundle::default()).unwrap_err();
    assert!(
        error.starts_with("invalid certificate from the control plane: does not chain to the trust bundle: UnknownIssuer"),
        "{error}"
    );
}

#[test]
fn without_a_bundle_in_the_answer_the_configs_is_used() {
    let ca = TestCa::new("CA");
    let (key, csr) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let mut response = ca.sign(&csr, HOUR, None).unwrap();
    response.trust_bundle_pem = String::new();
    assert_eq!(
        check(response.clone(), &key, &TrustBundle::default()).unwrap_err(),
        "invalid certificate from the control plane: no trust bundle to check it against"
    );
    assert!(check(response, &key, &ca.bundle()).is_ok());
}

#[test]
fn a_certificate_without_an_id_of_the_mesh_is_refused() {
    let ca = TestCa::new("CA");
    let (key, csr) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let response = ca
        .sign(&csr, HOUR, Some(&["spiffe://other/web".to_owned()]))
        .unwrap();
    assert_eq!(
        check(response, &key, &TrustBundle::default()).unwrap_err(),
        "invalid certificate from the control plane: no SPIFFE ID of mesh \"default\""
    );
}

#[test]
fn garbage_is_refused() {
    let (key, _) = key_and_csr(MESH, "web-1", &["web".into()]).unwrap();
    let response = CertificateResponse {
        certificate_chain_pem: "garbage".into(),
        trust_bundle_pem: String::new(),
        not_after_unix: 0,
    };
    assert_eq!(
        check(response, &key, &TrustBundle::default()).unwrap_err(),
        "invalid certificate from the control plane: empty certificate chain"
    );
}
