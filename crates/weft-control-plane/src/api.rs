//! The REST API: JSON over HTTP/1.1 for the CLI, the UI and scripts. Paths
//! are listed in `weft_api::rest`; handlers are generic over
//! [`weft_api::Kind`], so a new kind needs no new route.
//!
//! Every error is an `ErrorBody` with the right status: 400 (bad JSON,
//! invalid resource, missing mesh), 404, 409 (exists, mesh not empty), 500.
//!
//! Private keys never leave the control plane through it: the CA endpoint
//! serves certificates, the token endpoints serve tokens and their claims.

use std::sync::Arc;

use axum::{
    Router,
    http::StatusCode,
    middleware::map_response,
    routing::{get, post},
};

use crate::{identity::Identity, sessions::Sessions, store::Store, taps::Taps};

mod apply;
pub mod auth;
mod ca;
mod error;
mod resources;
mod stats;
mod status;
mod tap;
mod tokens;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub sessions: Arc<Sessions>,
    pub identity: Arc<Identity>,
    pub taps: Arc<Taps>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/apply", post(apply::apply))
        .route("/status/dataplanes", get(status::list))
        .route(
            "/meshes",
            get(resources::list_meshes).post(resources::create_mesh),
        )
        .route(
            "/meshes/{name}",
            get(resources::get_mesh)
                .put(resources::put_mesh)
                .delete(resources::delete_mesh),
        )
        .route(
            "/meshes/{mesh}/{kinds}",
            get(resources::list_in_mesh).post(resources::create_in_mesh),
        )
        .route(
            "/meshes/{mesh}/{kinds}/{name}",
            get(resources::get_in_mesh)
                .put(resources::put_in_mesh)
                .delete(resources::delete_in_mesh),
        )
        .route("/meshes/{mesh}/{kinds}/{name}/status", get(status::one))
        .route("/meshes/{mesh}/{kinds}/{name}/tap", get(tap::tap))
        .route("/meshes/{mesh}/ca", get(ca::get))
        .route("/meshes/{mesh}/stats", get(stats::mesh))
        .route("/metrics", get(stats::metrics))
        .route("/tokens/dataplane", post(tokens::issue))
        .route("/tokens/revoke", post(tokens::revoke))
        .route("/tokens/revoked", get(tokens::revoked))
        .route("/tokens/signing-key/rotate", post(tokens::rotate))
        .route("/{kinds}", get(resources::list_everywhere))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API path") })
        .layer(map_response(error::json_errors))
        .with_state(state)
}

#[cfg(test)]
mod tests;
