//! `GET /meshes/{mesh}/stats[?service=S]` (what `weft stat` prints) and
//! `GET /metrics` (the control plane's metrics, OpenMetrics text).

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::Deserialize;
use weft_api::{Kind, Resource, rest::MeshStats};

use super::{ApiError, ApiState, resources::require_mesh};
use crate::telemetry::{self, aggregate};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    service: Option<String>,
}

/// The mesh's services and edges from the connected proxies' reports;
/// with `service`, that service and the edges to and from it (404 when no
/// Dataplane of the mesh serves it).
pub async fn mesh(
    State(state): State<ApiState>,
    Path(mesh): Path<String>,
    Query(query): Query<StatsQuery>,
) -> Result<Json<MeshStats>, ApiError> {
    require_mesh(&state, &mesh).await?;
    if let Some(service) = &query.service
        && !serves(&state, &mesh, service).await?
    {
        return Err(ApiError::not_found(format!(
            "service {service:?} does not exist in mesh {mesh:?}: no Dataplane serves it"
        )));
    }
    let live = state
        .sessions
        .connected()
        .into_iter()
        .filter(|c| c.mesh == mesh)
        .map(|c| (c.mesh, c.name, c.id));
    let reports = state.sessions.telemetry().reports.of(live);
    let mut stats = aggregate::mesh_stats(&mesh, &reports);
    if let Some(service) = &query.service {
        stats.services.retain(|s| &s.destination == service);
        stats
            .edges
            .retain(|e| &e.destination == service || e.source.as_ref() == Some(service));
    }
    Ok(Json(stats))
}

/// Whether a stored Dataplane of `mesh` has an inbound for `service`.
async fn serves(state: &ApiState, mesh: &str, service: &str) -> Result<bool, ApiError> {
    let dataplanes = state.store.list(Kind::Dataplane, Some(mesh)).await?;
    Ok(dataplanes.iter().any(|stored| match &stored.resource {
        Resource::Dataplane(dp) => dp.networking.inbound.iter().any(|i| i.service() == service),
        _ => false,
    }))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MeshLabel {
    mesh: String,
}

/// The control plane's metrics: those kept as things happen, and the
/// resources and connected proxies counted now.
pub async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let resources = Family::<KindLabel, Gauge>::default();
    let counts = state.store.count_by_kind().await?;
    // Every kind is listed, those without resources at 0.
    for kind in Kind::ALL {
        let n = counts
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n);
        resources
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_owned(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut by_mesh: BTreeMap<String, i64> = BTreeMap::new();
    for c in state.sessions.connected() {
        *by_mesh.entry(c.mesh).or_default() += 1;
    }
    let proxies = Family::<MeshLabel, Gauge>::default();
    for (mesh, n) in by_mesh {
        proxies.get_or_create(&MeshLabel { mesh }).set(n);
    }
    let mut scraped = Registry::default();
    scraped.register("weft_cp_resources", "Stored resources, by kind", resources);
    scraped.register(
        "weft_cp_connected_proxies",
        "Proxies with an open config stream, by mesh",
        proxies,
    );
    let text = state.sessions.telemetry().encode(&scraped);
    Ok(([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text).into_response())
}
