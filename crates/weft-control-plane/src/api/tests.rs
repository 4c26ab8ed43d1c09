//! The router driven in-process with `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Method, Request, StatusCode, header},
};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::{
    identity::{CaKey, DpAuth},
    store::SqliteStore,
};

async fn app() -> Router {
    app_with(Some(CaKey::generate().unwrap().0)).await.0
}

/// The router over a fresh store, with `ca_key`; also returns the state.
async fn app_with(ca_key: Option<CaKey>) -> (Router, ApiState) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().await.unwrap());
    let identity = Identity::load(store.clone(), ca_key, DpAuth::Token)
        .await
        .unwrap();
    let state = ApiState {
        store,
        sessions: Arc::new(Sessions::new([])),
        identity: Arc::new(identity),
        taps: Arc::new(crate::taps::Taps::default()),
    };
    (router(state.clone()), state)
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let raw = body.map(|b| b.to_string());
    call_raw(app, method, path, raw.as_deref()).await
}

async fn call_raw(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    assert!(is_json, "{status} without a JSON content type");
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn dataplane(mesh: &str, name: &str, port: u16) -> Value {
    json!({
        "type": "Dataplane", "mesh": mesh, "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": port, "servicePort": 8080, "tags": {"service": name}}],
        },
    })
}

fn outcome(body: &Value) -> &str {
    body["results"][0]["outcome"].as_str().unwrap()
}

async fn with_default_mesh() -> Router {
    let app = app().await;
    let (status, _) = call(&app, Method::PUT, "/meshes/default", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    app
}

mod apply;
mod ca;
mod ca_rotation;
mod errors;
mod permissions;
mod resources;
mod status;
mod tap;
mod tokens;
