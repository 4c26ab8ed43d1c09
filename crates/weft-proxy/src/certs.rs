//! Workload certificates from the control plane.
//!
//! Each request makes a new ECDSA P-256 key, sends a CSR for this proxy's
//! SPIFFE IDs with `IssueCertificate`, and checks the answer before it is
//! used: the chain parses, the leaf is for our key, chains to the trust
//! bundle and carries a SPIFFE ID of the mesh. The private key stays in
//! this process, inside the credentials handed to rustls.
//!
//! [`Certs`] serializes issuance, so the agent (a first certificate before
//! it acknowledges a config) and the `renewal` task never race.

pub mod renewal;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rcgen::{CertificateParams, DnType, KeyPair, SanType, string::Ia5String};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime, pem::PemObject},
    sign::CertifiedKey,
};
use tokio::time::Instant;
use tonic::{Code, transport::Channel};
use tracing::info;
use webpki::{EndEntityCert, KeyUsage};
use weft_api::proto::{
    CertificateRequest, CertificateResponse, dataplane_discovery_client::DataplaneDiscoveryClient,
};

use crate::tls::{
    Credentials, Identity, PROVIDER, TrustBundle,
    stats::TlsStats,
    verify::{mesh_ids, spiffe_id, uri_sans},
};

/// How long one `IssueCertificate` call may take.
pub const ISSUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no certificate was obtained.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot create a CSR: {0}")]
    Csr(#[from] rcgen::Error),
    #[error("IssueCertificate failed ({code:?}): {message}")]
    Rpc { code: Code, message: String },
    #[error("invalid certificate from the control plane: {0}")]
    Invalid(String),
}

impl From<tonic::Status> for CertError {
    fn from(status: tonic::Status) -> Self {
        CertError::Rpc {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where certificates come from: the control plane's `IssueCertificate`,
/// or a test CA.
pub trait CertificateSource: Send + Sync {
    fn issue(
        &self,
        request: CertificateRequest,
    ) -> BoxFuture<'_, Result<CertificateResponse, tonic::Status>>;
}

/// `IssueCertificate` over a channel that reconnects by itself, so a
/// control plane that comes back is used again without any bookkeeping.
#[derive(Debug, Clone)]
pub struct GrpcSource {
    channel: Channel,
}

impl GrpcSource {
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }
}

impl CertificateSource for GrpcSource {
    fn issue(
        &self,
        request: CertificateRequest,
    ) -> BoxFuture<'_, Result<CertificateResponse, tonic::Status>> {
        let mut client = DataplaneDiscoveryClient::new(self.channel.clone());
        Box::pin(async move {
            match tokio::time::timeout(ISSUE_TIMEOUT, client.issue_certificate(request)).await {
                Ok(result) => result.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "no answer within {ISSUE_TIMEOUT:?}"
                ))),
            }
        })
    }
}

/// Who this proxy asks certificates for.
#[derive(Debug, Clone)]
pub struct Requester {
    pub mesh: String,
    pub dataplane: String,
    pub token: String,
    /// The services the Dataplane serves (its inbounds' `service` tags).
    pub services: Vec<String>,
}

/// Obtains and renews this proxy's certificate, one request at a time.
pub struct Certs {
    source: Arc<dyn CertificateSource>,
    identity: Arc<Identity>,
    requester: Requester,
    /// Held across a whole issuance: the agent and the renewal task must
    /// not both request, and the second one then sees the first's result.
    /// Never touched by the request path.
    issuing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl Certs {
    pub fn new(
        source: Arc<dyn CertificateSource>,
        identity: Arc<Identity>,
        requester: Requester,
    ) -> Self {
        Self {
            source,
            identity,
            requester,
            issuing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Makes sure there is an unexpired certificate requested for
    /// `issuer_id` (issuing one if not), verified against the config's
    /// `roots` when the control plane's answer carries none.
    pub async fn ensure(&self, issuer_id: &str, roots: &TrustBundle) -> Result<(), CertError> {
        let _issuing = self.issuing.lock().await;
        if let Some(current) = self.identity.credentials()
            && current.issuer_id == issuer_id
            && current.is_valid(SystemTime::now())
        {
            return Ok(());
        }
        let credentials = self.issue(issuer_id, roots).await?;
        self.identity.store_credentials(credentials);
        Ok(())
    }

    /// Renews the certificate if the running config wants one and it is
    /// due (or from another issuer). `Ok(false)` when nothing was due.
    pub async fn renew_if_due(&self) -> Result<bool, CertError> {
        let _issuing = self.issuing.lock().await;
        let settings = self.identity.settings();
        if !settings.is_on() {
            return Ok(false);
        }
        let due = match self.identity.credentials() {
            Some(current) => {
                current.issuer_id != settings.issuer_id || Instant::now() >= current.renew_at
            }
            None => true,
        };
        if !due {
            return Ok(false);
        }
        let credentials = self
            .issue(&settings.issuer_id, &settings.trust_bundle)
            .await?;
        self.identity.store_credentials(credentials);
        Ok(true)
    }

    async fn issue(&self, issuer_id: &str, roots: &TrustBundle) -> Result<Credentials, CertError> {
        let stats = self.identity.stats();
        let result = self.try_issue(issuer_id, roots).await;
        match &result {
            Ok(credentials) => {
                TlsStats::bump(&stats.certificates_issued);
                let expires_in = credentials
                    .not_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                info!(
                    spiffe_ids = ?credentials.spiffe_ids,
                    issuer_id,
                    ?expires_in,
                    "workload certificate issued"
                );
            }
            Err(_) => TlsStats::bump(&stats.certificate_failures),
        }
        result
    }

    async fn try_issue(
        &self,
        issuer_id: &str,
        roots: &TrustBundle,
    ) -> Result<Credentials, CertError> {
        let Requester {
            mesh,
            dataplane,
            token,
            services,
        } = &self.requester;
        let (key, csr_pem) = key_and_csr(mesh, dataplane, services)?;
        let response = self
            .source
            .issue(CertificateRequest {
                mesh: mesh.clone(),
                dataplane: dataplane.clone(),
                csr_pem,
                token: token.clone(),
            })
            .await?;
        credentials(
            response,
            &key,
            mesh,
            issuer_id,
            roots,
            &mut fastrand::Rng::new(),
        )
    }
}

/// A new P-256 key pair and a PEM CSR signed with it, asking for the
/// SPIFFE ID of every service (the control plane has the last word on
/// what the certificate says).
pub fn key_and_csr(
    mesh: &str,
    dataplane: &str,
    services: &[String],
) -> Result<(KeyPair, String), CertError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{mesh}/{dataplane}"));
    params.subject_alt_names = services
        .iter()
        .map(|service| Ia5String::try_from(spiffe_id(mesh, service)).map(SanType::URI))
        .collect::<Result<_, _>>()?;
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key, csr))
}

/// Checks an `IssueCertificate` answer for `key` and makes it usable.
pub fn credentials(
    response: CertificateResponse,
    key: &KeyPair,
    mesh: &str,
    issuer_id: &str,
    config_roots: &TrustBundle,
    rng: &mut fastrand::Rng,
) -> Result<Credentials, CertError> {
    let invalid = |what: String| CertError::Invalid(what);
    let chain = CertificateDer::pem_slice_iter(response.certificate_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid("empty certificate chain".into()));
    };
    let bundle = TrustBundle::from_pem(&response.trust_bundle_pem)
        .map_err(|e| invalid(format!("trust bundle: {e}")))?;
    let roots = if bundle.is_empty() {
        config_roots
    } else {
        &bundle
    };
    if roots.is_empty() {
        return Err(invalid("no trust bundle to check it against".into()));
    }

    // Both usages: the same certificate serves inbound and calls outbound.
    let end_entity =
        EndEntityCert::try_from(leaf).map_err(|e| invalid(format!("leaf certificate: {e}")))?;
    for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
        end_entity
            .verify_for_usage(
                PROVIDER.signature_verification_algorithms.all,
                roots.anchors(),
                &chain[1..],
                UnixTime::now(),
                usage,
                None,
                None,
            )
            .map_err(|e| invalid(format!("does not chain to the trust bundle: {e}")))?;
    }
    let spiffe_ids = mesh_ids(uri_sans(leaf).map_err(|e| invalid(e.to_string()))?, mesh);
    if spiffe_ids.is_empty() {
        return Err(invalid(format!("no SPIFFE ID of mesh {mesh:?}")));
    }
    let not_after = not_after(leaf).map_err(invalid)?;
    let now = SystemTime::now();
    let Ok(remaining) = not_after.duration_since(now) else {
        return Err(invalid("already expired".into()));
    };

    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = PROVIDER
        .key_provider
        .load_private_key(der)
        .map_err(|e| invalid(format!("cannot load our own key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|_| invalid("the certificate is not for the key of the CSR".into()))?;

    Ok(Credentials {
        key: Arc::new(certified),
        spiffe_ids,
        not_after,
        issuer_id: issuer_id.to_owned(),
        bundle: Arc::new(bundle),
        renew_at: renewal::renew_at(Instant::now(), remaining, rng),
    })
}

fn not_after(leaf: &CertificateDer<'_>) -> Result<SystemTime, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("leaf certificate: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    u64::try_from(secs)
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
        .map_err(|_| format!("not_after {secs} is before 1970"))
}

#[cfg(test)]
mod tests;
