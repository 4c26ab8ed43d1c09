//! `GET /meshes/{mesh}/dataplanes/{name}/tap[?path=P&method=M]`: the
//! requests passing one proxy as they finish, one JSON [`TapLine`] per line
//! (NDJSON), until the client goes away (which stops the tap on the
//! proxy) or the proxy does (a last `ended` line says why).
//!
//! 404 names a Dataplane that is not stored; 503 says it has no tap stream
//! (offline) and 429 that it has as many taps as it may.

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::stream;
use serde::Deserialize;
use weft_api::{Kind, ResourceKey, rest::TapLine};

use super::{ApiError, ApiState};
use crate::taps::{TapError, TapFilter, Watch};

#[derive(Debug, Deserialize)]
pub struct TapQuery {
    /// Only requests whose path starts with this.
    #[serde(default)]
    path: String,
    /// Only requests with this method (any case).
    #[serde(default)]
    method: String,
}

pub async fn tap(
    State(state): State<ApiState>,
    Path((mesh, kinds, name)): Path<(String, String, String)>,
    Query(query): Query<TapQuery>,
) -> Result<Response, ApiError> {
    if Kind::from_plural(&kinds) != Some(Kind::Dataplane) {
        return Err(ApiError::not_found(format!(
            "only dataplanes can be tapped, not {kinds:?}"
        )));
    }
    let filter = filter(query)?;
    let key = ResourceKey::in_mesh(Kind::Dataplane, &mesh, &name);
    if state.store.get(&key).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "dataplane {name:?} not found in mesh {mesh:?}"
        )));
    }
    let watch = state
        .taps
        .watch(&mesh, &name, filter)
        .map_err(|e| match e {
            TapError::NoStream { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            TapError::Busy { .. } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        })?;
    let mut response = Body::from_stream(lines(watch)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Checks the query: a method is an HTTP token, a path starts with `/`.
fn filter(query: TapQuery) -> Result<TapFilter, ApiError> {
    if !query.path.is_empty() && !query.path.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "path {:?} must start with '/'",
            query.path
        )));
    }
    if !query.method.is_empty() && axum::http::Method::from_bytes(query.method.as_bytes()).is_err()
    {
        return Err(ApiError::bad_request(format!(
            "method {:?} is not an HTTP method",
            query.method
        )));
    }
    Ok(TapFilter {
        path_prefix: query.path,
        method: query.method.to_ascii_uppercase(),
    })
}

/// The watch's lines as NDJSON; the body owns the watch, so dropping the
/// body (the client went away) stops the tap.
fn lines(watch: Watch) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(watch, |mut watch| async move {
        let line = watch.lines.recv().await?;
        Some((Ok(encode(&line)), watch))
    })
}

fn encode(line: &TapLine) -> Bytes {
    // Serializing these plain structs cannot fail; an empty line would
    // only be skipped by readers.
    let mut json = serde_json::to_vec(line).unwrap_or_default();
    json.push(b'\n');
    Bytes::from(json)
}
