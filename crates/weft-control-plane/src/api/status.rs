//! Health and proxy status: `/healthz`, `/status/dataplanes[?mesh=M]` and
//! `/meshes/{mesh}/dataplanes/{name}/status`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use weft_api::{
    Kind, ResourceKey,
    rest::{DataplaneStatus, Health},
};

use super::{ApiError, ApiState, resources::require_mesh};

/// 200 with the store revision once a store round trip worked, else 503;
/// also the version and clock, for `weft check`.
pub async fn healthz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    match state.store.revision().await {
        Ok(revision) => Ok(Json(Health {
            status: "ok".to_owned(),
            revision,
            version: weft_api::VERSION.to_owned(),
            time_unix_ms: crate::sessions::now_unix_ms(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {e}"),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    mesh: Option<String>,
}

/// Every stored Dataplane's status, online or not, sorted by mesh then name.
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Vec<DataplaneStatus>>, ApiError> {
    if let Some(mesh) = &query.mesh {
        require_mesh(&state, mesh).await?;
    }
    let stored = state
        .store
        .list(Kind::Dataplane, query.mesh.as_deref())
        .await?;
    Ok(Json(
        stored
            .iter()
            .map(|s| {
                let mesh = s.resource.mesh().unwrap_or_default();
                state.sessions.status(mesh, s.resource.name())
            })
            .collect(),
    ))
}

/// One Dataplane's status; 404 if it is not stored.
pub async fn one(
    State(state): State<ApiState>,
    Path((mesh, kinds, name)): Path<(String, String, String)>,
) -> Result<Json<DataplaneStatus>, ApiError> {
    if Kind::from_plural(&kinds) != Some(Kind::Dataplane) {
        return Err(ApiError::not_found(format!(
            "status is served for dataplanes only, not {kinds:?}"
        )));
    }
    let key = ResourceKey::in_mesh(Kind::Dataplane, mesh, name);
    if state.store.get(&key).await?.is_none() {
        return Err(ApiError::not_found(format!("{key} not found")));
    }
    Ok(Json(state.sessions.status(&key.mesh, &key.name)))
}
