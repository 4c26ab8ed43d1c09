//! CRUD for every kind: `/meshes[/{name}]` for meshes,
//! `/meshes/{mesh}/{kinds}[/{name}]` for what lives in a mesh, and
//! `/{kinds}` to list a kind across meshes.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Map, Value};
use weft_api::{
    Kind, Resource, ResourceKey,
    rest::{ApplyResponse, ApplyResult, ListResponse},
};

use super::{ApiError, ApiState};
use crate::store::{Change, ChangeOutcome};

type ApiResult<T> = Result<T, ApiError>;

/// A kind from a path, which must live inside a mesh.
fn mesh_scoped_kind(plural: &str) -> ApiResult<Kind> {
    match Kind::from_plural(plural) {
        Some(kind) if kind.is_mesh_scoped() => Ok(kind),
        _ => Err(ApiError::not_found(format!(
            "unknown resource kind {plural:?} in a mesh (expected one of: {})",
            Kind::ALL
                .into_iter()
                .filter(|k| k.is_mesh_scoped())
                .map(Kind::plural)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub async fn list_meshes(State(state): State<ApiState>) -> ApiResult<Json<ListResponse>> {
    list(&state, Kind::Mesh, None).await
}

pub async fn list_in_mesh(
    State(state): State<ApiState>,
    Path((mesh, kinds)): Path<(String, String)>,
) -> ApiResult<Json<ListResponse>> {
    let kind = mesh_scoped_kind(&kinds)?;
    require_mesh(&state, &mesh).await?;
    list(&state, kind, Some(&mesh)).await
}

pub async fn list_everywhere(
    State(state): State<ApiState>,
    Path(kinds): Path<String>,
) -> ApiResult<Json<ListResponse>> {
    let kind = Kind::from_plural(&kinds).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown resource kind {kinds:?} (expected one of: {})",
            Kind::ALL.map(Kind::plural).join(", ")
        ))
    })?;
    list(&state, kind, None).await
}

async fn list(state: &ApiState, kind: Kind, mesh: Option<&str>) -> ApiResult<Json<ListResponse>> {
    // The store sorts by mesh, then name.
    let items = state.store.list(kind, mesh).await?;
    Ok(Json(ListResponse {
        items: items.iter().map(|s| s.to_value()).collect(),
    }))
}

/// 404 unless `mesh` exists, so that a typo in a mesh name is not mistaken
/// for an empty mesh.
pub(super) async fn require_mesh(state: &ApiState, mesh: &str) -> ApiResult<()> {
    match state.store.get(&ResourceKey::mesh(mesh)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("mesh {mesh:?} does not exist"))),
    }
}

pub async fn get_mesh(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    get_one(&state, ResourceKey::mesh(name)).await
}

pub async fn get_in_mesh(
    State(state): State<ApiState>,
    Path((mesh, kinds, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let kind = mesh_scoped_kind(&kinds)?;
    get_one(&state, ResourceKey::in_mesh(kind, mesh, name)).await
}

async fn get_one(state: &ApiState, key: ResourceKey) -> ApiResult<Json<Value>> {
    match state.store.get(&key).await? {
        Some(stored) => Ok(Json(stored.to_value())),
        None => Err(ApiError::not_found(format!("{key} not found"))),
    }
}

pub async fn create_mesh(
    State(state): State<ApiState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ApplyResponse>)> {
    let resource = parse_body(&body, Kind::Mesh, None, None)?;
    let extra = mesh_changes(&state, &resource).await?;
    let response = write(&state, Change::Create(resource), extra).await?;
    Ok((StatusCode::CREATED, response))
}

pub async fn create_in_mesh(
    State(state): State<ApiState>,
    Path((mesh, kinds)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ApplyResponse>)> {
    let kind = mesh_scoped_kind(&kinds)?;
    let resource = parse_body(&body, kind, Some(&mesh), None)?;
    let response = write(&state, Change::Create(resource), Vec::new()).await?;
    Ok((StatusCode::CREATED, response))
}

pub async fn put_mesh(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ApplyResponse>> {
    let resource = parse_body(&body, Kind::Mesh, None, Some(&name))?;
    let extra = mesh_changes(&state, &resource).await?;
    write(&state, Change::Upsert(resource), extra).await
}

pub async fn put_in_mesh(
    State(state): State<ApiState>,
    Path((mesh, kinds, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<ApplyResponse>> {
    let kind = mesh_scoped_kind(&kinds)?;
    let resource = parse_body(&body, kind, Some(&mesh), Some(&name))?;
    write(&state, Change::Upsert(resource), Vec::new()).await
}

pub async fn delete_mesh(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&state, ResourceKey::mesh(name)).await
}

pub async fn delete_in_mesh(
    State(state): State<ApiState>,
    Path((mesh, kinds, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = mesh_scoped_kind(&kinds)?;
    delete(&state, ResourceKey::in_mesh(kind, mesh, name)).await
}

/// What a Mesh needs written with it (its new builtin CA), after checking
/// its CA settings.
async fn mesh_changes(state: &ApiState, resource: &Resource) -> ApiResult<Vec<Change>> {
    let Resource::Mesh(mesh) = resource else {
        return Ok(Vec::new());
    };
    let label = format!("Mesh {:?}", mesh.name);
    let mut changes = super::ca::prepare(state, &[(&label, mesh)]).await?;
    changes.extend(default_permission(mesh));
    Ok(changes)
}

/// The `allow-all` TrafficPermission a mesh gets when it is created (not
/// when it is updated: the store only writes it in the batch that creates
/// the mesh), unless the mesh opts out with `skipDefaultPermission`.
pub(super) fn default_permission(mesh: &weft_api::Mesh) -> Option<Change> {
    (!mesh.skip_default_permission).then(|| {
        Change::CreateWithNewMesh(Resource::TrafficPermission(
            weft_api::TrafficPermission::allow_all(&mesh.name),
        ))
    })
}

/// Writes `change` and, in the same transaction, `extra` (whose outcomes
/// are not reported).
async fn write(
    state: &ApiState,
    change: Change,
    extra: Vec<Change>,
) -> ApiResult<Json<ApplyResponse>> {
    let key = change.key();
    let mut changes = vec![change];
    changes.extend(extra);
    let report = state.store.apply(changes).await?;
    let outcome = report
        .outcomes
        .first()
        .and_then(|o| o.as_apply_outcome())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store reported no outcome for the write",
            )
        })?;
    Ok(Json(ApplyResponse {
        revision: report.revision,
        results: vec![apply_result(key, outcome)],
    }))
}

pub(super) fn apply_result(key: ResourceKey, outcome: weft_api::rest::ApplyOutcome) -> ApplyResult {
    ApplyResult {
        kind: key.kind,
        mesh: key.kind.is_mesh_scoped().then_some(key.mesh),
        name: key.name,
        outcome,
    }
}

async fn delete(state: &ApiState, key: ResourceKey) -> ApiResult<StatusCode> {
    let report = state.store.apply(vec![Change::Delete(key)]).await?;
    debug_assert_eq!(report.outcomes, [ChangeOutcome::Deleted]);
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a resource from a request body. `type`, `mesh` and `name` may be
/// left out of the body (the path says them); if present they must agree.
fn parse_body(
    body: &[u8],
    kind: Kind,
    mesh: Option<&str>,
    name: Option<&str>,
) -> ApiResult<Resource> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(&e))?;
    let Value::Object(fields) = &mut value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object (a resource)",
        ));
    };
    agree_or_fill(fields, "type", kind.as_str())?;
    if let Some(mesh) = mesh {
        agree_or_fill(fields, "mesh", mesh)?;
    }
    if let Some(name) = name {
        agree_or_fill(fields, "name", name)?;
    }
    let label = match fields.get("name").and_then(Value::as_str) {
        Some(name) => format!("{kind} {name:?}"),
        None => kind.to_string(),
    };
    Resource::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("{label} is invalid")).with_details(e.lines()))
}

fn agree_or_fill(fields: &mut Map<String, Value>, field: &str, from_path: &str) -> ApiResult<()> {
    match fields.get(field) {
        None => {
            fields.insert(field.to_owned(), from_path.into());
            Ok(())
        }
        Some(Value::String(s)) if s == from_path => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "{field} {other} in the body does not match {from_path:?} in the path"
        ))),
    }
}
