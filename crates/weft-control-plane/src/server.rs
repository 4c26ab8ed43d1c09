//! [`run`]: open the store, bind both listeners, serve until shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tonic::transport::{Identity as TlsIdentity, ServerTlsConfig, server::TcpIncoming};

use crate::admin_token::AdminToken;
use crate::{
    api::{self, ApiState},
    config::{ControlPlaneConfig, DpAuth},
    cp_tls::{self, listener::TlsListener},
    distributor::Distributor,
    identity::{Identity, secret::CA_KEY_ENV},
    store,
};

/// After the shutdown signal, how long open connections get to finish
/// before they are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the control plane until `shutdown` completes, then stops gracefully:
/// proxy streams are ended (proxies keep their config and reconnect later),
/// in-flight API requests finish, and the store is closed.
///
/// Logs `control plane ready api=ADDR dp=ADDR store=URL` once both
/// listeners are bound. Fails if the store cannot be opened or an address
/// cannot be bound (the error names it), or if a server fails.
pub async fn run(
    config: ControlPlaneConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&config.store)
        .await
        .with_context(|| format!("cannot open the store {}", config.store))?;
    let api_listener = TcpListener::bind(config.api_addr)
        .await
        .with_context(|| format!("cannot listen for the API on {}", config.api_addr))?;
    let dp_listener = TcpListener::bind(config.dp_addr)
        .await
        .with_context(|| format!("cannot listen for proxies on {}", config.dp_addr))?;
    // The real addresses, in case port 0 was asked for.
    let api_addr = api_listener.local_addr().context("API listener address")?;
    let dp_addr = dp_listener.local_addr().context("proxy listener address")?;

    let identity = Arc::new(
        Identity::load(store.clone(), config.ca_key.clone(), config.dp_auth)
            .await
            .context("cannot load the token signing key")?,
    );
    if config.dp_auth == DpAuth::None {
        tracing::warn!(
            "--dp-auth none: proxies are not authenticated; anyone who reaches {dp_addr} can \
             register any dataplane and obtain its certificate"
        );
    }
    if config.ca_key.is_none() {
        tracing::warn!(
            "no CA key (--ca-key-file or {CA_KEY_ENV}): meshes with a builtin CA are refused, \
             and the token signing key is stored unencrypted"
        );
    }
    let tls = cp_tls::prepare(
        &config.tls,
        &[dp_addr, api_addr],
        store.as_ref(),
        config.ca_key.as_ref(),
    )
    .await
    .context("cannot set up TLS")?;
    let distributor = Distributor::start(store.clone(), config.startup_grace, identity.clone())
        .await
        .context("cannot start the config distributor")?;
    let app = api::router(ApiState {
        store: store.clone(),
        sessions: distributor.sessions().clone(),
        identity,
        taps: distributor.taps().clone(),
    });
    let app = match &config.admin_token_file {
        Some(file) => {
            let token = AdminToken::ensure(store.as_ref(), file)
                .await
                .context("cannot set up the admin token")?;
            app.layer(axum::middleware::from_fn_with_state(
                token,
                api::auth::require_admin,
            ))
        }
        None => {
            tracing::warn!("the REST API requires no admin token");
            app
        }
    };
    let mut grpc = tonic::transport::Server::builder();
    match &tls.dp {
        Some(cert) => {
            let identity = TlsIdentity::from_pem(&cert.cert_pem, cert.key_pem.as_bytes());
            grpc = grpc
                .tls_config(ServerTlsConfig::new().identity(identity))
                .context("invalid TLS certificate or key for the proxy listener")?;
        }
        None => tracing::warn!(
            "the proxy listener {dp_addr} serves plaintext: proxies cannot verify the control plane"
        ),
    }
    let grpc = grpc
        .http2_keepalive_interval(Some(config.dp_keepalive.0))
        .http2_keepalive_timeout(Some(config.dp_keepalive.1))
        .add_service(distributor.service());

    let (stopping, stop) = watch::channel(false);
    let stopped = move || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let mut servers = JoinSet::new();
    let api_stopped = stopped();
    match &tls.api {
        Some(cert) => {
            let listener =
                TlsListener::new(api_listener, cert).context("cannot serve the API over TLS")?;
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(api_stopped)
                    .await
                    .context("the API server failed")
            });
        }
        None => {
            servers.spawn(async move {
                axum::serve(api_listener, app)
                    .with_graceful_shutdown(api_stopped)
                    .await
                    .context("the API server failed")
            });
        }
    }
    let incoming = TcpIncoming::from(dp_listener).with_nodelay(Some(true));
    let dp_stopped = stopped();
    servers.spawn(async move {
        grpc.serve_with_incoming_shutdown(incoming, dp_stopped)
            .await
            .context("the proxy server failed")
    });
    tracing::info!(
        "control plane ready api={api_addr} dp={dp_addr} store={} dp_tls={} api_tls={}",
        config.store,
        on_off(tls.dp.is_some()),
        on_off(tls.api.is_some()),
    );

    let mut errors = Vec::new();
    tokio::select! {
        () = shutdown => {}
        Some(result) = servers.join_next() => {
            errors.push(server_error(result).unwrap_or_else(|| {
                anyhow::anyhow!("a server stopped on its own")
            }));
        }
    }
    tracing::info!("control plane stopping");
    // End the proxy streams first: a graceful gRPC shutdown waits for them.
    distributor.shutdown().await;
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut errors = Vec::new();
        while let Some(result) = servers.join_next().await {
            errors.extend(server_error(result));
        }
        errors
    })
    .await;
    match drained {
        Ok(more) => errors.extend(more),
        Err(_) => {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
            servers.abort_all();
        }
    }
    store.close().await;
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => {
            tracing::info!("control plane stopped");
            Ok(())
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The error a finished server task ended with, if any.
fn server_error(
    result: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> Option<anyhow::Error> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(anyhow::anyhow!("a server task failed: {e}")),
    }
}
