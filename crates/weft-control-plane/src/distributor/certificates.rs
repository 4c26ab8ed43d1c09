//! `IssueCertificate`: a workload certificate for a registered Dataplane,
//! signed by its mesh's CA from the proxy's CSR.
//!
//! In order: the request names a Dataplane; the token is valid for its mesh
//! (checked before the store is read, so that an unauthenticated caller
//! learns nothing about which Dataplanes exist); the Dataplane is
//! registered and the token allows every service it serves; the mesh has
//! mTLS on; the CSR's signature verifies. The certificate names exactly the
//! Dataplane's services, whatever the CSR asked for.

use tonic::Status;
use weft_api::{
    Kind, Resource, ResourceKey,
    proto::{CertificateRequest, CertificateResponse},
    rest::now_unix,
};

use super::{
    DiscoveryService,
    auth::{check, services_of, status},
};
use crate::identity::{ca::CsrError, cas::CaError, tokens::authorize};

impl DiscoveryService {
    pub(super) async fn issue(
        &self,
        request: CertificateRequest,
    ) -> Result<CertificateResponse, Status> {
        let CertificateRequest {
            mesh,
            dataplane: name,
            csr_pem,
            token,
        } = request;
        if mesh.is_empty() || name.is_empty() {
            return Err(Status::invalid_argument("mesh and dataplane are required"));
        }
        let claims = check(&self.identity, &token, &mesh, &name, [], "IssueCertificate")?;

        let key = ResourceKey::in_mesh(Kind::Dataplane, &mesh, &name);
        let dataplane = match self.store.get(&key).await.map_err(unavailable)? {
            Some(stored) => match stored.resource {
                Resource::Dataplane(dp) => dp,
                _ => return Err(Status::internal(format!("{key} is not a Dataplane"))),
            },
            None => {
                return Err(Status::not_found(format!(
                    "dataplane {mesh}/{name} is not registered; open the stream (Hello) first"
                )));
            }
        };
        let services = services_of(&dataplane);
        if let Some(claims) = &claims {
            authorize(claims, &mesh, services.iter().copied()).map_err(|e| {
                tracing::warn!(%mesh, dataplane = %name, error = %e, "certificate refused");
                status(e.into())
            })?;
        }

        let mesh_resource = match self
            .store
            .get(&ResourceKey::mesh(&mesh))
            .await
            .map_err(unavailable)?
        {
            Some(stored) => match stored.resource {
                Resource::Mesh(m) => m,
                _ => return Err(Status::internal(format!("mesh {mesh:?} is not a Mesh"))),
            },
            None => return Err(Status::not_found(format!("mesh {mesh:?} does not exist"))),
        };
        let Some(mtls) = mesh_resource.mtls_enabled() else {
            return Err(Status::failed_precondition(format!(
                "mesh {mesh} has mTLS off; no certificates are issued"
            )));
        };
        let ca = self
            .identity
            .cas
            .ca_for(&mesh_resource)
            .await
            .map_err(|e| {
                tracing::error!(%mesh, error = %e, "the mesh CA is not available");
                match e {
                    CaError::Store(_) => Status::unavailable(e.to_string()),
                    _ => Status::failed_precondition(e.to_string()),
                }
            })?;
        let services: Vec<String> = services.into_iter().map(str::to_owned).collect();
        let now = now_unix();
        let issued = ca
            .issue(
                &csr_pem,
                &mesh,
                &name,
                &services,
                mtls.certificate_lifetime(),
                now,
            )
            .map_err(|e| match e {
                CsrError::Sign(_) => {
                    tracing::error!(%mesh, dataplane = %name, error = %e, "cannot sign a certificate");
                    Status::internal(e.to_string())
                }
                CsrError::CaExpired | CsrError::NoServices => {
                    Status::failed_precondition(e.to_string())
                }
                CsrError::NotPem
                | CsrError::NotCsr(_)
                | CsrError::BadSignature
                | CsrError::UnsupportedKey(_) => Status::invalid_argument(e.to_string()),
            })?;
        self.identity.count_issued();
        self.sessions
            .certificate_issued(&mesh, &name, now, issued.not_after);
        tracing::info!(
            %mesh,
            dataplane = %name,
            services = ?services,
            not_after = %weft_api::rest::rfc3339(issued.not_after),
            "workload certificate issued"
        );
        Ok(CertificateResponse {
            certificate_chain_pem: issued.chain_pem,
            trust_bundle_pem: issued.trust_bundle_pem,
            not_after_unix: i64::try_from(issued.not_after).unwrap_or(i64::MAX),
        })
    }
}

fn unavailable(e: crate::store::StoreError) -> Status {
    Status::unavailable(format!("store: {e}"))
}
