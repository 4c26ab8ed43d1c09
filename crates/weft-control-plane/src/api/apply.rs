//! `POST /apply`: many resources, validated together, written in one
//! transaction, or not at all.

use std::collections::HashMap;

use axum::{Json, body::Bytes, extract::State};
use serde_json::Value;
use weft_api::{
    Kind, Resource,
    rest::{ApplyRequest, ApplyResponse},
};

use super::{
    ApiError, ApiState, ca,
    error::store_status,
    resources::{self, apply_result},
};
use crate::store::Change;

pub async fn apply(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<ApplyResponse>, ApiError> {
    let request: ApplyRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(&e))?;
    if request.resources.is_empty() {
        return Err(ApiError::bad_request("resources: empty, nothing to apply"));
    }
    let labels: Vec<String> = request
        .resources
        .iter()
        .enumerate()
        .map(|(i, v)| label(i, v))
        .collect();
    let resources = validate(request.resources, &labels)?;

    // Meshes first, so a file may list a Dataplane before its Mesh; the
    // results still come back in request order.
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by_key(|&i| resources[i].kind() != Kind::Mesh);
    let mut changes: Vec<Change> = order
        .iter()
        .map(|&i| Change::Upsert(resources[i].clone()))
        .collect();
    // New builtin CAs go in the same transaction as their Meshes, after
    // them; their outcomes are not reported.
    let meshes: Vec<(&str, &weft_api::Mesh)> = resources
        .iter()
        .zip(&labels)
        .filter_map(|(r, label)| match r {
            Resource::Mesh(m) => Some((label.as_str(), m)),
            _ => None,
        })
        .collect();
    changes.extend(ca::prepare(&state, &meshes).await?);
    // After everything the request itself writes: a file that declares
    // its own `allow-all` keeps it.
    changes.extend(
        meshes
            .iter()
            .filter_map(|(_, mesh)| resources::default_permission(mesh)),
    );
    let report = state.store.apply(changes).await.map_err(|e| {
        let status = store_status(&e);
        // Name the item the error is about, when there is one.
        let item = e
            .key()
            .and_then(|key| resources.iter().position(|r| r.key() == key));
        match item {
            Some(i) => ApiError::new(status, format!("{}: {e}", labels[i])),
            None => ApiError::from(e),
        }
    })?;

    let mut results = vec![None; resources.len()];
    for (&i, outcome) in order.iter().zip(&report.outcomes) {
        results[i] = outcome
            .as_apply_outcome()
            .map(|o| apply_result(resources[i].key(), o));
    }
    Ok(Json(ApplyResponse {
        revision: report.revision,
        results: results.into_iter().flatten().collect(),
    }))
}

/// `resources[1] (Dataplane "web")`, with whatever the raw item says.
fn label(index: usize, value: &Value) -> String {
    let field = |f: &str| value.get(f).and_then(Value::as_str);
    match (field("type"), field("name")) {
        (Some(t), Some(n)) => format!("resources[{index}] ({t} {n:?})"),
        (Some(t), None) => format!("resources[{index}] ({t})"),
        _ => format!("resources[{index}]"),
    }
}

/// Every item must be valid and appear once; errors name each item and field.
fn validate(values: Vec<Value>, labels: &[String]) -> Result<Vec<Resource>, ApiError> {
    let mut resources = Vec::with_capacity(values.len());
    let mut invalid = Vec::new();
    let mut details = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match Resource::from_value(value) {
            Ok(r) => resources.push(r),
            Err(errors) => {
                invalid.push(labels[i].as_str());
                details.extend(
                    errors
                        .lines()
                        .into_iter()
                        .map(|line| format!("resources[{i}]: {line}")),
                );
            }
        }
    }
    if !invalid.is_empty() {
        return Err(
            ApiError::bad_request(format!("{}: invalid", invalid.join(", "))).with_details(details),
        );
    }
    let mut seen = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        if let Some(first) = seen.insert(r.key(), i) {
            return Err(ApiError::bad_request(format!(
                "{}: the same resource as resources[{first}]",
                labels[i]
            )));
        }
    }
    Ok(resources)
}
