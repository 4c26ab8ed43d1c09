//! Peer certificate checks between proxies.
//!
//! rustls's own webpki verifiers match DNS names or IP addresses, which a
//! SPIFFE ID is not, so these verifiers do the same chain and signature
//! checks through webpki (to a root of the current trust bundle, at the
//! handshake's time) and then match URI SANs instead: a SPIFFE ID of this
//! mesh on both sides, and on the outbound side the ID of the service
//! being called.

use std::sync::{Arc, LazyLock};

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::GeneralName;

use super::{Identity, PROVIDER};

/// Why a peer's certificate was refused after its chain checked out.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("no trust bundle to verify peers with")]
    NoTrustBundle,
    #[error("cannot read the certificate's SANs: {0}")]
    Unparsable(String),
    #[error("certificate has no SPIFFE ID of mesh {mesh:?} (URI SANs: {})", list(.presented))]
    NotInMesh {
        mesh: String,
        presented: Vec<String>,
    },
    #[error("peer is {}, expected {expected}", list(.presented))]
    WrongService {
        expected: String,
        presented: Vec<String>,
    },
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

impl From<PeerError> for rustls::Error {
    fn from(e: PeerError) -> Self {
        CertificateError::Other(OtherError(Arc::new(e))).into()
    }
}

static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> =
    LazyLock::new(|| PROVIDER.signature_verification_algorithms);

/// `spiffe://<mesh>/` — the prefix of every identity in the mesh.
pub fn mesh_prefix(mesh: &str) -> String {
    format!("spiffe://{mesh}/")
}

/// The SPIFFE ID of a service.
pub fn spiffe_id(mesh: &str, service: &str) -> String {
    format!("spiffe://{mesh}/{service}")
}

/// Every URI SAN of a certificate.
pub fn uri_sans(cert: &CertificateDer<'_>) -> Result<Vec<String>, PeerError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| PeerError::Unparsable(e.to_string()))?;
    let sans = parsed
        .subject_alternative_name()
        .map_err(|e| PeerError::Unparsable(e.to_string()))?;
    Ok(sans
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The URI SANs that are SPIFFE IDs of `mesh` (a non-empty path after the
/// mesh).
pub fn mesh_ids(sans: Vec<String>, mesh: &str) -> Vec<String> {
    let prefix = mesh_prefix(mesh);
    sans.into_iter()
        .filter(|san| {
            san.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty())
        })
        .collect()
}

/// Chain and signature checks to the current roots, then the mesh's
/// SPIFFE IDs of the peer (at least one).
fn verify_peer(
    identity: &Identity,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: KeyUsage,
) -> Result<Vec<String>, rustls::Error> {
    let roots = identity.roots();
    if roots.is_empty() {
        return Err(PeerError::NoTrustBundle.into());
    }
    let cert = EndEntityCert::try_from(end_entity).map_err(pki_error)?;
    cert.verify_for_usage(
        ALGORITHMS.all,
        roots.anchors(),
        intermediates,
        now,
        usage,
        None,
        None,
    )
    .map_err(pki_error)?;
    let sans = uri_sans(end_entity)?;
    let ids = mesh_ids(sans.clone(), identity.mesh());
    if ids.is_empty() {
        return Err(PeerError::NotInMesh {
            mesh: identity.mesh().to_owned(),
            presented: sans,
        }
        .into());
    }
    Ok(ids)
}

/// webpki's errors as rustls reports them, keeping the context (times)
/// where rustls has a variant for it.
fn pki_error(error: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let cert_error = match error {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::BadEncoding,
        E::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        E::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    cert_error.into()
}

/// The outbound side's check of the server it called: a peer of this mesh
/// that is the expected service.
#[derive(Debug)]
pub struct ServerVerifier {
    identity: Arc<Identity>,
    expected: String,
}

impl ServerVerifier {
    pub fn new(identity: Arc<Identity>, service: &str) -> Self {
        let expected = spiffe_id(identity.mesh(), service);
        Self { identity, expected }
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        // An endpoint's address says nothing about who serves it; the
        // SPIFFE ID does.
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ids = verify_peer(
            &self.identity,
            end_entity,
            intermediates,
            now,
            KeyUsage::server_auth(),
        )?;
        if !ids.contains(&self.expected) {
            return Err(PeerError::WrongService {
                expected: self.expected.clone(),
                presented: ids,
            }
            .into());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}

/// The inbound side's check of its caller: any peer of this mesh (who may
/// call whom is authorization's business, later).
#[derive(Debug)]
pub struct ClientVerifier {
    identity: Arc<Identity>,
}

impl ClientVerifier {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self { identity }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; our clients have one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        verify_peer(
            &self.identity,
            end_entity,
            intermediates,
            now,
            KeyUsage::client_auth(),
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_ids_need_the_mesh_and_a_service() {
        let sans = [
            "spiffe://default/web",
            "spiffe://default/",
            "spiffe://other/web",
            "spiffe://defaults/web",
            "https://default/web",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(mesh_ids(sans, "default"), ["spiffe://default/web"]);
    }

    #[test]
    fn wrong_service_names_both_sides() {
        let error = PeerError::WrongService {
            expected: "spiffe://default/backend".into(),
            presented: vec!["spiffe://default/other".into()],
        };
        assert_eq!(
            error.to_string(),
            "peer is spiffe://default/other, expected spiffe://default/backend"
        );
    }
}
