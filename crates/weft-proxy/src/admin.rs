//! The proxy's admin server: `GET /ready` for readiness probes,
//! `GET /config` for the config being run, as JSON, and `GET /metrics`
//! for counters in the Prometheus text format. Anything else is 404.

use std::{fmt::Write as _, future::Future, net::SocketAddr, sync::Arc, time::UNIX_EPOCH};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use weft_api::dataplane::Admin;

use crate::{
    status::{NOT_READY, Status},
    tls::stats::TlsStats,
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

/// mTLS and authorization counters, and when the current certificate expires.
async fn metrics(State(status): State<Arc<Status>>) -> String {
    let identity = status.identity();
    let stats = identity.stats();
    let counters = [
        (
            "weft_tls_inbound_mtls_connections_total",
            "Inbound connections accepted with mTLS.",
            &stats.inbound_mtls,
        ),
        (
            "weft_tls_inbound_plaintext_connections_total",
            "Inbound connections served in plaintext.",
            &stats.inbound_plaintext,
        ),
        (
            "weft_tls_plaintext_refused_total",
            "Plaintext connections refused because mTLS is strict.",
            &stats.plaintext_refused,
        ),
        (
            "weft_tls_inbound_handshake_failures_total",
            "Inbound TLS handshakes that failed.",
            &stats.inbound_handshake_failures,
        ),
        (
            "weft_tls_outbound_handshake_failures_total",
            "Outbound TLS handshakes that failed.",
            &stats.outbound_handshake_failures,
        ),
        (
            "weft_tls_certificates_issued_total",
            "Workload certificates obtained.",
            &stats.certificates_issued,
        ),
        (
            "weft_tls_certificate_failures_total",
            "Workload certificate requests that failed.",
            &stats.certificate_failures,
        ),
    ];
    let mut text = String::new();
    for (name, help, counter) in counters {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            TlsStats::get(counter)
        );
    }
    identity.authz_stats().render(&mut text);
    identity.policy_stats().render(&mut text);
    identity.redirect_stats().render(&mut text);
    identity.trace_stats().render(&mut text);
    identity.access_log_stats().render(&mut text);
    if let Some(credentials) = identity.credentials() {
        let not_after = credentials
            .not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = "weft_tls_certificate_expiry_timestamp_seconds";
        let _ = write!(
            text,
            "# HELP {name} When the workload certificate expires (UNIX time).\n# TYPE {name} gauge\n{name} {not_after}\n"
        );
    }
    text
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
