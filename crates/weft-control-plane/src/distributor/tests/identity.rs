//! Tokens and certificates on the real gRPC service: registration refused
//! and accepted, mTLS settings in the config, IssueCertificate end to end,
//! and streams ended by revocation and rotation.

use rcgen::{CertificateParams, KeyPair};
use weft_api::{
    proto::{CertificateRequest, MtlsMode},
    rest::now_unix,
};
use x509_parser::extensions::GeneralName;

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

async fn token_harness() -> Harness {
    Harness::start_with(Duration::ZERO, vec![], DpAuth::Token).await
}

async fn token(h: &Harness, mesh: &str, services: &[&str]) -> (String, String) {
    let services = services.iter().map(|s| s.to_string()).collect();
    let (token, record) = h
        .identity
        .tokens
        .issue(mesh, services, HOUR, now_unix())
        .await
        .unwrap();
    (token, record.jti)
}

async fn strict_mesh(h: &Harness) {
    let strict = weft_api::Resource::from_value(json!({
        "type": "Mesh", "name": "default",
        "mtls": {"mode": "strict", "certificateLifetime": "2h"},
    }))
    .unwrap();
    h.store.apply(vec![Change::Upsert(strict)]).await.unwrap();
}

fn csr() -> String {
    let key = KeyPair::generate().unwrap();
    CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

fn certificate_request(name: &str, token: &str, csr_pem: String) -> CertificateRequest {
    CertificateRequest {
        mesh: "default".into(),
        dataplane: name.into(),
        csr_pem,
        token: token.into(),
    }
}

/// The stream's end: `Err` with the status the control plane ended it with.
async fn end_of(proxy: &mut Proxy) -> tonic::Status {
    loop {
        match tokio::time::timeout(PROMPTLY, proxy.configs.message())
            .await
            .expect("the stream ends within a second")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn registration_needs_a_token_for_the_mesh_and_every_service() {
    let h = token_harness().await;
    let err = h.connect(backend("backend-a", 20010)).await.err().unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "dataplane token: missing")
    );
    let err = h
        .connect_with(backend("backend-a", 20010), "weft1.nonsense")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().starts_with("dataplane token: malformed"),
        "{}",
        err.message()
    );

    let (web_only, _) = token(&h, "default", &["web"]).await;
    let err = h
        .connect_with(backend("backend-a", 20010), &web_only)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::PermissionDenied,
            "token for mesh default allows services [web], not backend"
        )
    );
    let (other_mesh, _) = token(&h, "other", &["backend"]).await;
    let err = h
        .connect_with(backend("backend-a", 20010), &other_mesh)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        h.store
            .get(&ResourceKey::in_mesh(
                Kind::Dataplane,
                "default",
                "backend-a"
            ))
            .await
            .unwrap()
            .is_none(),
        "nothing registered"
    );

    let (good, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &good)
        .await
        .unwrap();
    let config = a.next_config().await;
    assert_eq!(config.dataplane, "backend-a");
    assert_eq!(config.mtls, None, "the mesh has mTLS off");
}

#[tokio::test]
async fn a_token_cannot_take_over_a_dataplane_of_another_service() {
    let h = token_harness().await;
    let (backend_token, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &backend_token)
        .await
        .unwrap();
    a.next_config().await;
    drop(a);
    let sessions = h.distributor.sessions().clone();
    wait_for(|| (!sessions.status("default", "backend-a").online).then_some(())).await;
    // Same name, now claiming to serve web, with a web token.
    let mut hijack = backend("backend-a", 20010);
    hijack["networking"]["inbound"][0]["tags"]["service"] = "web".into();
    let (web_token, _) = token(&h, "default", &["web"]).await;
    let err = h.connect_with(hijack, &web_token).await.err().unwrap();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::PermissionDenied,
            "token for mesh default allows services [web], not backend"
        )
    );
}

#[tokio::test]
async fn deregister_needs_a_token_too() {
    let h = token_harness().await;
    let (good, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &good)
        .await
        .unwrap();
    a.next_config().await;
    let mut request = DeregisterRequest {
        mesh: "default".into(),
        name: "backend-a".into(),
        token: String::new(),
    };
    let err = h
        .client()
        .await
        .deregister(request.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let (web_only, _) = token(&h, "default", &["web"]).await;
    request.token = web_only;
    let err = h
        .client()
        .await
        .deregister(request.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A stopping proxy closes its stream before it deregisters.
    drop(a);
    request.token = good;
    h.client().await.deregister(request).await.unwrap();
    let key = ResourceKey::in_mesh(Kind::Dataplane, "default", "backend-a");
    assert!(h.store.get(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_strict_mesh_sends_its_trust_bundle_and_issues_certificates() {
    let h = token_harness().await;
    strict_mesh(&h).await;
    let (good, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &good)
        .await
        .unwrap();
    let config = a.next_config().await;
    let mtls = config.mtls.expect("mTLS settings");
    assert_eq!(mtls.mode(), MtlsMode::MtlsStrict);
    assert_eq!(mtls.certificate_lifetime_seconds, 7200);
    assert!(
        mtls.trust_bundle_pem
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(mtls.issuer_id.len(), 64, "hex SHA-256");

    let before = h.identity.certificates_issued();
    let issued = h
        .client()
        .await
        .issue_certificate(certificate_request("backend-a", &good, csr()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.trust_bundle_pem, mtls.trust_bundle_pem);
    let now = i64::try_from(now_unix()).unwrap();
    assert!((now + 7200 - issued.not_after_unix).abs() <= 2);
    let block = x509_parser::pem::parse_x509_pem(issued.certificate_chain_pem.as_bytes())
        .unwrap()
        .1;
    let cert = block.parse_x509().unwrap();
    let sans = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(sans, &[GeneralName::URI("spiffe://default/backend")]);
    assert_eq!(h.identity.certificates_issued(), before + 1);

    // The same CA after another pass: the issuer id is stable.
    h.store
        .apply(vec![Change::Upsert(resource(caller()))])
        .await
        .unwrap();
    let (web, _) = token(&h, "default", &["web"]).await;
    let mut w = h.connect_with(caller(), &web).await.unwrap();
    assert_eq!(
        w.next_config().await.mtls.unwrap().issuer_id,
        mtls.issuer_id
    );
}

#[tokio::test]
async fn certificate_requests_are_refused_with_the_reason() {
    let h = token_harness().await;
    let (good, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &good)
        .await
        .unwrap();
    a.next_config().await;
    let issue = |request: CertificateRequest| async {
        h.client()
            .await
            .issue_certificate(request)
            .await
            .unwrap_err()
    };

    let err = issue(certificate_request("backend-a", &good, csr())).await;
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::FailedPrecondition,
            "mesh default has mTLS off; no certificates are issued"
        )
    );
    strict_mesh(&h).await;
    let err = issue(certificate_request("backend-a", "", csr())).await;
    assert_eq!(err.code(), Code::Unauthenticated);
    let (web_only, _) = token(&h, "default", &["web"]).await;
    let err = issue(certificate_request("backend-a", &web_only, csr())).await;
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = issue(certificate_request("backend-b", &good, csr())).await;
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::NotFound,
            "dataplane default/backend-b is not registered; open the stream (Hello) first"
        )
    );
    let err = issue(certificate_request("backend-a", &good, "junk".into())).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("csr_pem: "), "{}", err.message());
}

#[tokio::test]
async fn revoking_a_token_ends_its_stream_and_refuses_it_after() {
    let h = token_harness().await;
    let (revoked, jti) = token(&h, "default", &["backend"]).await;
    let (kept, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &revoked)
        .await
        .unwrap();
    a.next_config().await;
    let mut b = h
        .connect_with(backend("backend-b", 20020), &kept)
        .await
        .unwrap();
    b.next_config().await;

    h.identity
        .tokens
        .revoke(&jti, now_unix())
        .await
        .unwrap()
        .unwrap();
    let ended = h
        .distributor
        .sessions()
        .end_streams(|auth| auth.jti == jti, "dataplane token: revoked");
    assert_eq!(ended, 1);
    let status = end_of(&mut a).await;
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "dataplane token: revoked")
    );
    drop(a);
    let sessions = h.distributor.sessions().clone();
    wait_for(|| (!sessions.status("default", "backend-a").online).then_some(())).await;
    let err = h
        .connect_with(backend("backend-a", 20010), &revoked)
        .await
        .err()
        .unwrap();
    assert_eq!(err.message(), "dataplane token: revoked");
    assert!(
        sessions.status("default", "backend-b").online,
        "others stay"
    );
}

#[tokio::test]
async fn rotating_the_signing_key_ends_every_stream_of_older_tokens() {
    let h = token_harness().await;
    let (old, _) = token(&h, "default", &["backend"]).await;
    let mut a = h
        .connect_with(backend("backend-a", 20010), &old)
        .await
        .unwrap();
    a.next_config().await;
    let (kid, _) = h.identity.tokens.rotate(now_unix()).await.unwrap();
    h.distributor.sessions().end_streams(
        |auth| auth.kid != kid,
        "dataplane token: signed by a rotated key",
    );
    assert_eq!(
        end_of(&mut a).await.message(),
        "dataplane token: signed by a rotated key"
    );
    drop(a);
    let (new, _) = token(&h, "default", &["backend"]).await;
    let sessions = h.distributor.sessions().clone();
    wait_for(|| (!sessions.status("default", "backend-a").online).then_some(())).await;
    let mut again = h
        .connect_with(backend("backend-a", 20010), &new)
        .await
        .unwrap();
    again.next_config().await;
}
