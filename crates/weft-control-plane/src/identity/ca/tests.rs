//! The CA on its own: builtin roots sealed and reopened, workload
//! certificates checked field by field and verified by rustls' WebPKI
//! (the verifier proxies use), and provided chains with their errors.

use std::{sync::Arc, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};
use weft_api::rest::now_unix;
use x509_parser::{extensions::GeneralName, prelude::*};

use super::{
    provided::{self, ProvidedError},
    *,
};
use crate::{identity::secret::CaKey, store::tests::TempDir};

const DAY: Duration = Duration::from_secs(86400);

fn ca_key() -> CaKey {
    CaKey::generate().unwrap().0
}

fn builtin_ca(mesh: &str) -> Ca {
    let key = ca_key();
    let stored = builtin::create(mesh, "default", &key, now_unix()).unwrap();
    builtin::load(&stored, &key, now_unix()).unwrap()
}

/// A CSR for a fresh P-256 key that asks for names it must not get.
fn csr() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::URI("spiffe://default/admin".try_into().unwrap()));
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Verifies `chain_pem` (leaf first) against `bundle_pem` as a client
/// certificate, the way a proxy's inbound will.
fn verify(chain_pem: &str, bundle_pem: &str) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    for root in certs(bundle_pem) {
        roots.add(root).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let chain = certs(chain_pem);
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map(|_| ())
}

fn uris(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => u.to_string(),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

#[test]
fn a_builtin_root_is_a_p256_ca_whose_key_is_sealed() {
    let key = ca_key();
    let now = now_unix();
    let stored = builtin::create("default", "default", &key, now).unwrap();
    let pem = certs(&stored.cert_pem);
    let (_, root) = X509Certificate::from_der(&pem[0]).unwrap();
    assert!(root.is_ca());
    assert_eq!(
        root.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Weft default CA"
    );
    let years = (root.validity().not_after.timestamp() - i64::try_from(now).unwrap()) / 86400 / 365;
    assert_eq!(years, 10);
    assert!(
        !String::from_utf8_lossy(&stored.sealed_key).contains("PRIVATE KEY"),
        "sealed, not PEM"
    );
    // The sealed key opens with the same key and mesh only.
    assert!(builtin::load(&stored, &key, now).is_ok());
    let err = builtin::load(&stored, &ca_key(), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decrypt the CA key of mesh \"default\": wrong CA key, or the stored value is corrupt"
    );
    let mut moved = stored;
    moved.mesh = "other".into();
    assert!(
        builtin::load(&moved, &key, now).is_err(),
        "bound to its mesh"
    );
    assert!(!format!("{:?}", builtin_ca("default")).contains("PRIVATE"));
}

#[test]
fn a_workload_certificate_names_the_services_and_nothing_the_csr_asked() {
    let ca = builtin_ca("default");
    let now = now_unix();
    let services = ["api".to_owned(), "web".to_owned()];
    let issued = ca
        .issue(&csr(), "default", "web-1", &services, DAY, now)
        .unwrap();
    assert_eq!(issued.trust_bundle_pem, ca.trust_bundle_pem());
    let chain = certs(&issued.chain_pem);
    assert_eq!(chain.len(), 1, "a root CA adds no intermediates");
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(
        uris(&cert),
        ["spiffe://default/api", "spiffe://default/web"]
    );
    assert!(!cert.is_ca());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && !usage.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);
    let validity = cert.validity();
    let now = i64::try_from(now).unwrap();
    assert_eq!(
        validity.not_before.timestamp(),
        now - 60,
        "backdated a minute"
    );
    assert_eq!(validity.not_after.timestamp(), now + 86400);
    assert_eq!(issued.not_after, u64::try_from(now + 86400).unwrap());
    verify(&issued.chain_pem, &issued.trust_bundle_pem).unwrap();
    // Another mesh's root does not vouch for it.
    assert!(verify(&issued.chain_pem, &builtin_ca("default").trust_bundle_pem()).is_err());
}

#[test]
fn a_certificate_never_outlives_its_ca() {
    let ca = builtin_ca("default");
    let far = ca.not_after() - 3600;
    let issued = ca
        .issue(&csr(), "default", "web-1", &["web".into()], DAY, far)
        .unwrap();
    assert_eq!(issued.not_after, ca.not_after());
    let err = ca
        .issue(
            &csr(),
            "default",
            "web-1",
            &["web".into()],
            DAY,
            ca.not_after(),
        )
        .unwrap_err();
    assert_eq!(err, CsrError::CaExpired);
}

#[test]
fn bad_csrs_are_refused_with_the_reason() {
    let ca = builtin_ca("default");
    let issue = |pem: &str| ca.issue(pem, "default", "web-1", &["web".into()], DAY, now_unix());
    assert_eq!(issue("hello").unwrap_err(), CsrError::NotPem);
    let not_der =
        "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(issue(not_der), Err(CsrError::NotCsr(_))));

    // Flip one bit of the signature: possession is not proven any more.
    let good = csr();
    let block = x509_parser::pem::parse_x509_pem(good.as_bytes()).unwrap().1;
    let mut der = block.contents.clone();
    let last = der.len() - 1;
    der[last] ^= 1;
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
    );
    assert_eq!(issue(&tampered).unwrap_err(), CsrError::BadSignature);
    assert_eq!(
        CsrError::BadSignature.to_string(),
        "csr_pem: the signature does not verify; the CSR must be signed with the key it carries"
    );
    let no_services = ca.issue(&good, "default", "web-1", &[], DAY, now_unix());
    assert_eq!(no_services.unwrap_err(), CsrError::NoServices);
}

/// A root and an intermediate it signed, as PEM files; returns
/// (dir, chain file = intermediate + root, intermediate key file, root PEM).
fn provided_intermediate() -> (TempDir, String, String, String) {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let ca_params = |cn: &str| {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Corp Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let int_key = KeyPair::generate().unwrap();
    let int = ca_params("Corp Mesh Intermediate")
        .signed_by(&int_key, &Issuer::new(root_params, &root_key))
        .unwrap();
    let chain = dir.0.join("chain.pem");
    let key = dir.0.join("int.key");
    std::fs::write(&chain, format!("{}{}", int.pem(), root.pem())).unwrap();
    std::fs::write(&key, int_key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (dir, path(chain), path(key), root.pem())
}

#[tokio::test]
async fn a_provided_intermediate_is_served_with_its_chain() {
    let (_dir, chain, key, root_pem) = provided_intermediate();
    let ca = provided::load(&chain, &key, now_unix()).await.unwrap();
    assert_eq!(ca.trust_bundle_pem(), root_pem.replace("\r\n", "\n"));
    let issued = ca
        .issue(&csr(), "corp", "web-1", &["web".into()], DAY, now_unix())
        .unwrap();
    let served = certs(&issued.chain_pem);
    assert_eq!(served.len(), 2, "leaf, then the intermediate");
    let (_, int) = X509Certificate::from_der(&served[1]).unwrap();
    assert_eq!(
        int.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Corp Mesh Intermediate"
    );
    verify(&issued.chain_pem, &issued.trust_bundle_pem).unwrap();
    assert_eq!(certs(&ca.certificate_pem()).len(), 2);
}

#[tokio::test]
async fn provided_ca_errors_name_the_field_and_the_problem() {
    let (dir, chain, key, root_pem) = provided_intermediate();
    let load =
        |c: String, k: String| async move { provided::load(&c, &k, now_unix()).await.unwrap_err() };
    let missing = dir.0.join("missing.pem").to_str().unwrap().to_owned();
    let err = load(missing.clone(), key.clone()).await;
    assert_eq!(err.field_error().path, "mtls.ca.certFile");
    assert!(
        err.to_string()
            .starts_with(&format!("mtls.ca.certFile: cannot read {missing}: "))
    );

    let err = load(chain.clone(), chain.clone()).await;
    assert!(matches!(err, ProvidedError::Key { .. }), "{err}");
    assert_eq!(err.field_error().path, "mtls.ca.keyFile");

    // The root's certificate with the intermediate's key.
    let root_only = dir.0.join("root.pem");
    std::fs::write(&root_only, &root_pem).unwrap();
    let root_only = root_only.to_str().unwrap().to_owned();
    let err = load(root_only, key.clone()).await;
    assert_eq!(
        err.field_error().to_string(),
        format!(
            "mtls.ca.certFile: {} does not match the private key (keyFile)",
            dir.0.join("root.pem").display()
        )
    );

    // The intermediate without its root.
    let text = std::fs::read_to_string(&chain).unwrap();
    let int_only = dir.0.join("int.pem");
    std::fs::write(&int_only, text.replace(&root_pem, "")).unwrap();
    let err = load(int_only.to_str().unwrap().to_owned(), key.clone()).await;
    assert!(
        matches!(
            err,
            ProvidedError::Chain {
                source: ChainError::NoRoot,
                ..
            }
        ),
        "{err}"
    );

    // A leaf is not a CA.
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["x.example".to_owned()])
        .unwrap()
        .self_signed(&leaf_key)
        .unwrap();
    let (leaf_file, leaf_key_file) = (dir.0.join("leaf.pem"), dir.0.join("leaf.key"));
    std::fs::write(&leaf_file, leaf.pem()).unwrap();
    std::fs::write(&leaf_key_file, leaf_key.serialize_pem()).unwrap();
    let err = load(
        leaf_file.to_str().unwrap().to_owned(),
        leaf_key_file.to_str().unwrap().to_owned(),
    )
    .await;
    assert!(
        err.to_string()
            .ends_with("is not a CA certificate (it lacks basicConstraints CA:TRUE)"),
        "{err}"
    );
}
