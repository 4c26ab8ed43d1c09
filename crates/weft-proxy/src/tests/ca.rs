//! A test CA made with rcgen: signs CSRs as the control plane would, and
//! makes ready-to-use credentials for data-path tests.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType, string::Ia5String,
};
use weft_api::proto::CertificateResponse;

use crate::{
    certs,
    config::{MtlsConfig, MtlsMode},
    tls::{Credentials, Identity, TrustBundle},
};

pub const MESH: &str = "default";

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Arc<Self> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Arc::new(Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The root, as a trust bundle PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn bundle(&self) -> Arc<TrustBundle> {
        Arc::new(TrustBundle::from_pem(&self.pem).unwrap())
    }

    /// Signs a CSR for `lifetime`, with the SANs it asks for or, when
    /// given, `uris` instead.
    pub fn sign(
        &self,
        csr_pem: &str,
        lifetime: Duration,
        uris: Option<&[String]>,
    ) -> Result<CertificateResponse, String> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;
        let now = SystemTime::now();
        // Backdated like a real CA, against clock skew.
        csr.params.not_before = (now - Duration::from_secs(60)).into();
        csr.params.not_after = (now + lifetime).into();
        if let Some(uris) = uris {
            csr.params.subject_alt_names = uris
                .iter()
                .map(|u| SanType::URI(Ia5String::try_from(u.as_str()).unwrap()))
                .collect();
        }
        let cert = csr.signed_by(&self.issuer).map_err(|e| e.to_string())?;
        let not_after = now + lifetime;
        Ok(CertificateResponse {
            certificate_chain_pem: cert.pem(),
            trust_bundle_pem: self.pem.clone(),
            not_after_unix: not_after
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .try_into()
                .unwrap(),
        })
    }

    /// Credentials for `service`, as the proxy would hold them.
    pub fn credentials(&self, service: &str, lifetime: Duration) -> Credentials {
        let (key, csr) = certs::key_and_csr(MESH, "test", &[service.to_owned()]).unwrap();
        let response = self.sign(&csr, lifetime, None).unwrap();
        certs::credentials(
            response,
            &key,
            MESH,
            "test",
            &TrustBundle::default(),
            &mut fastrand::Rng::new(),
        )
        .unwrap()
    }
}

/// mTLS settings that trust `ca`.
pub fn mtls(mode: MtlsMode, ca: &TestCa) -> MtlsConfig {
    MtlsConfig {
        mode,
        trust_bundle: ca.bundle(),
        certificate_lifetime_seconds: 3600,
        issuer_id: "test".into(),
    }
}

/// An identity for `service` with a certificate of `ca`, in `mode`.
pub fn identity(ca: &TestCa, service: &str, mode: MtlsMode) -> Arc<Identity> {
    let identity = Identity::new(MESH);
    identity.store_credentials(ca.credentials(service, Duration::from_secs(3600)));
    identity.apply(&mtls(mode, ca));
    identity
}
