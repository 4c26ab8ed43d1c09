//! Signing a workload certificate from a proxy's CSR.
//!
//! The CSR contributes its public key and nothing else: its signature is
//! verified (the proxy holds the private key), and every name, usage and
//! date in the certificate is decided here, from the Dataplane's services
//! and the mesh's settings.

use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, SubjectPublicKeyInfo,
};
use x509_parser::{certification_request::X509CertificationRequest, pem::Pem, prelude::FromDer};

use super::{Ca, builtin::BACKDATE_SECS, datetime, serial_number};

/// A signed workload certificate, as the proxy receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, then the intermediates up to (not including) the root.
    pub chain_pem: String,
    /// The root(s) to trust for peers.
    pub trust_bundle_pem: String,
    /// Unix seconds.
    pub not_after: u64,
}

/// Why a CSR was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("csr_pem: not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")]
    NotPem,
    #[error("csr_pem: not a PKCS#10 certificate request: {0}")]
    NotCsr(String),
    #[error(
        "csr_pem: the signature does not verify; the CSR must be signed with the key it carries"
    )]
    BadSignature,
    #[error("csr_pem: unsupported public key ({0}); use ECDSA P-256 or P-384, or Ed25519")]
    UnsupportedKey(String),
    #[error("no service to name: the Dataplane has no inbound")]
    NoServices,
    #[error("the mesh CA expired; replace it")]
    CaExpired,
    #[error("cannot sign the certificate: {0}")]
    Sign(String),
}

/// Labels a CSR may carry in PEM (the second from older tools).
const CSR_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

impl Ca {
    /// Signs a certificate for Dataplane `dataplane` of `mesh` that names
    /// `spiffe://<mesh>/<service>` for each of `services`, valid from a
    /// minute before `now` (unix seconds) for `lifetime`, but never past
    /// the CA's own expiry.
    pub fn issue(
        &self,
        csr_pem: &str,
        mesh: &str,
        dataplane: &str,
        services: &[String],
        lifetime: Duration,
        now: u64,
    ) -> Result<Issued, CsrError> {
        let public_key = csr_public_key(csr_pem)?;
        if services.is_empty() {
            return Err(CsrError::NoServices);
        }
        if self.not_after <= now {
            return Err(CsrError::CaExpired);
        }
        let not_after = now.saturating_add(lifetime.as_secs()).min(self.not_after);

        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Weft");
        // For people reading the certificate; peers go by the URI SANs.
        name.push(DnType::CommonName, format!("{dataplane}.{mesh}"));
        params.distinguished_name = name;
        params.subject_alt_names = services
            .iter()
            .map(|service| {
                let id = weft_api::mesh::spiffe_id(mesh, service);
                id.clone()
                    .try_into()
                    .map(SanType::URI)
                    .map_err(|_| CsrError::Sign(format!("{id:?} is not an IA5 string")))
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = datetime(now.saturating_sub(BACKDATE_SECS));
        params.not_after = datetime(not_after);
        params.serial_number =
            Some(serial_number().map_err(|_| CsrError::Sign("no randomness".into()))?);
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|e| CsrError::Sign(e.to_string()))?;

        let mut chain_pem = cert.pem();
        chain_pem.push_str(&self.intermediates_pem());
        Ok(Issued {
            chain_pem,
            trust_bundle_pem: self.trust_bundle_pem(),
            not_after,
        })
    }
}

/// The public key of a CSR whose signature verifies.
fn csr_public_key(csr_pem: &str) -> Result<SubjectPublicKeyInfo, CsrError> {
    let block = Pem::iter_from_buffer(csr_pem.as_bytes())
        .filter_map(Result::ok)
        .find(|b| CSR_LABELS.contains(&b.label.as_str()))
        .ok_or(CsrError::NotPem)?;
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| CsrError::NotCsr(e.to_string()))?;
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    let spki = &csr.certification_request_info.subject_pki;
    SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|_| CsrError::UnsupportedKey(spki.algorithm.algorithm.to_id_string()))
}
