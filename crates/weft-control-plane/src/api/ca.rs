//! The mesh CA over REST: its public certificates, and the checks (and the
//! builtin CA generation) that come with applying a Mesh.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use weft_api::{
    Mesh, Resource, ResourceKey,
    rest::{MeshCaResponse, TrustedCa, rfc3339},
};

use super::{ApiError, ApiState};
use crate::{
    identity::cas::{CaError, PrepareError},
    store::Change,
};

/// `GET /meshes/{mesh}/ca`: the issuing CA certificate (chain), never its
/// key, and the other trusted roots (`mtls.trustedCas`).
pub async fn get(
    State(state): State<ApiState>,
    Path(mesh): Path<String>,
) -> Result<Json<MeshCaResponse>, ApiError> {
    let Some(stored) = state.store.get(&ResourceKey::mesh(&mesh)).await? else {
        return Err(ApiError::not_found(format!("mesh {mesh:?} does not exist")));
    };
    let Resource::Mesh(m) = stored.resource else {
        return Err(ApiError::not_found(format!("mesh {mesh:?} does not exist")));
    };
    match state.identity.cas.ca_for(&m).await {
        Ok(ca) => Ok(Json(MeshCaResponse {
            certificate_pem: ca.certificate_pem(),
            not_after: rfc3339(ca.not_after()),
            trusted: ca
                .trusted()
                .iter()
                .map(|root| TrustedCa {
                    certificate_pem: root.certificate_pem(),
                    not_after: rfc3339(root.not_after()),
                })
                .collect(),
        })),
        Err(e @ CaError::MtlsOff { .. }) => Err(ApiError::not_found(format!(
            "{e}: it has no CA in use (set mtls.mode to permissive or strict)"
        ))),
        Err(CaError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
    }
}

/// The extra changes applying `meshes` needs (new builtin CAs), or the 400
/// naming the Mesh (by its label) and its `mtls.ca` problem.
pub(super) async fn prepare(
    state: &ApiState,
    meshes: &[(&str, &Mesh)],
) -> Result<Vec<Change>, ApiError> {
    let mut changes = Vec::new();
    for (label, mesh) in meshes {
        let prepared = state
            .identity
            .cas
            .prepare(mesh)
            .await
            .map_err(|e| match e {
                PrepareError::Invalid(errors) => {
                    ApiError::bad_request(format!("{label} is invalid"))
                        .with_details(errors.lines())
                }
                PrepareError::Store(e) => e.into(),
                PrepareError::Internal(why) => {
                    tracing::error!(mesh = %mesh.name, error = %why, "cannot prepare the mesh CA");
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why)
                }
            })?;
        changes.extend(prepared);
    }
    Ok(changes)
}
