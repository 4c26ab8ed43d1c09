//! The proxy's admin server: `GET /ready` for readiness probes,
//! `GET /config` for the config being run, as JSON, and `GET /metrics`
//! for the proxy's metrics in the OpenMetrics text format. Anything else is 404.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use weft_api::dataplane::Admin;

use crate::{
    metrics,
    status::{NOT_READY, Status},
};

/// Binds the admin address of a (validated) Dataplane.
pub async fn bind(admin: &Admin) -> anyhow::Result<TcpListener> {
    let ip = admin
        .listen_ip()
        .with_context(|| format!("admin address {:?} is not an IP address", admin.address))?;
    let addr = SocketAddr::new(ip, admin.port.get());
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the admin server to {addr}"))
}

/// Serves the admin API until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(status))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "admin server failed");
    }
}

pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/config", get(config))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(status)
}

async fn ready(State(status): State<Arc<Status>>) -> (StatusCode, &'static str) {
    match status.readiness() {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Everything the proxy counts, in the OpenMetrics text format (see `metrics`).
async fn metrics(State(status): State<Arc<Status>>) -> Response {
    let text = status.metrics().encode();
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn config(State(status): State<Arc<Status>>) -> Response {
    match status.config() {
        Some(config) => Json(config.as_ref()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, NOT_READY).into_response(),
    }
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}
