//! Weft's data plane: the proxy that runs beside each workload.
//!
//! [`run`] wires the parts together:
//! * the `admin` server (`/ready`, `/config`, `/metrics`), bound first,
//!   with the proxy's `metrics` registry;
//! * the control-plane `agent`, which receives versioned configs and is
//!   the only writer of the running state — the `listeners` and the
//!   `status` the admin server reports — and obtains the first
//!   certificate a config with mTLS needs (`certs`);
//! * with transparent proxying, the `redirect` listeners for what the
//!   host's iptables rules capture, and the mesh `dns` server;
//! * the certificate `renewal` task, which keeps that certificate fresh;
//! * per inbound, the `authz` layer (TrafficPermissions, JWTs) and rate
//!   limits; per outbound with traffic policies, the `policy` stack;
//! * `observe`: every stack reports each request and TCP connection to
//!   the sinks installed there (metrics, access logs, tap, trace spans);
//! * per listener, an `inbound` or `outbound` stack built from
//!   `tcp`, `http`, `tls` and the `balancer`, reading endpoint sets and
//!   the workload identity without locks;
//! * shutdown: deregister, keep serving for the drain time, then `drain`
//!   the connections.

// Tests may unwrap; the non-test build of the same code is still checked.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod access_log;
mod admin;
mod agent;
mod authz;
mod backoff;
mod balancer;
mod certs;
mod config;
mod cp_tls;
mod dns;
mod drain;
mod http;
mod inbound;
mod listeners;
mod metrics;
pub mod observe;
mod outbound;
mod policy;
mod redirect;
mod status;
mod tap;
mod tcp;
mod telemetry;
mod tls;
pub mod trace;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::{agent::Agent, listeners::Listeners, status::Status, tls::Identity};

/// How long a stopping proxy keeps serving after deregistering, so that
/// callers' proxies drop it from their endpoint sets first.
pub const DEFAULT_DRAIN_TIME: Duration = Duration::from_secs(1);
/// How long `Deregister` may take at shutdown.
pub const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long open connections may take to finish once the listeners stopped.
pub const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What `weft proxy` runs.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// This workload's Dataplane, already validated.
    pub dataplane: weft_api::Dataplane,
    /// Control-plane URL, e.g. `https://127.0.0.1:5678`.
    pub control_plane: String,
    /// The CA certificate (PEM) an `https` control plane is verified
    /// against; required for `https`, unused for `http`.
    pub cp_ca_pem: Option<String>,
    /// See [`DEFAULT_DRAIN_TIME`].
    pub drain_time: Duration,
    /// The dataplane token (`weft token dataplane`): sent in `Hello`,
    /// `Deregister` and certificate requests. `None` sends an empty one,
    /// which a control plane that requires tokens refuses.
    pub token: Option<String>,
    /// How often traffic counters go to the control plane (`weft stat`);
    /// see [`DEFAULT_STATS_INTERVAL`].
    pub stats_interval: Duration,
}

pub use agent::DEFAULT_STATS_INTERVAL;

/// Runs the proxy until `shutdown` resolves, then stops gracefully.
///
/// Fails only at startup: the admin address cannot be bound, or the
/// control-plane address is not a URL or cannot be verified (https without a
/// CA certificate). A control plane that is down is not
/// an error: the proxy waits for it, not ready, and retries.
pub async fn run(
    options: ProxyOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ProxyOptions {
        dataplane,
        control_plane,
        cp_ca_pem,
        drain_time,
        token,
        stats_interval,
    } = options;
    let admin_listener = admin::bind(&dataplane.networking.admin_or_default()).await?;
    if let Ok(addr) = admin_listener.local_addr() {
        info!(address = %addr, "admin server listening");
    }
    let identity = Identity::new(&dataplane.mesh);
    if let Some(inbound) = dataplane.networking.inbound.first() {
        identity.observer().set_local_service(inbound.service());
    }
    let agent = Agent::new(
        &control_plane,
        cp_ca_pem.as_deref(),
        &dataplane,
        token,
        identity.clone(),
        stats_interval,
    )?;
    let status = Arc::new(Status::new(identity.clone()));
    status.metrics().install(&identity);
    let renewal = tokio::spawn(certs::renewal::run(agent.certs()));
    let (stop_admin, admin_stopped) = oneshot::channel::<()>();
    let admin = tokio::spawn(admin::serve(admin_listener, status.clone(), async {
        let _ = admin_stopped.await;
    }));

    let mut listeners = Listeners::new(identity);
    // Dropping the agent's future below ends its stream (the control plane
    // sees it close) before `deregister` opens a connection of its own: the
    // control plane only deregisters a Dataplane whose stream is over, and
    // takes a live one for another instance of it.
    tokio::select! {
        never = agent.run(&mut listeners, &status) => match never {},
        () = shutdown => {}
    }

    info!(?drain_time, "shutting down");
    // Draining connections keep the certificate they have.
    renewal.abort();
    status.start_draining();
    match tokio::time::timeout(DEREGISTER_TIMEOUT, agent.deregister()).await {
        Ok(Ok(())) => info!("deregistered from the control plane"),
        Ok(Err(e)) => warn!(
            error = format!("{e:#}"),
            "cannot deregister; callers will notice when the listeners close"
        ),
        Err(_) => {
            warn!(timeout = ?DEREGISTER_TIMEOUT, "deregister timed out; callers will notice when the listeners close")
        }
    }
    tokio::time::sleep(drain_time).await;
    if listeners.shutdown(CONNECTION_DRAIN_TIMEOUT).await {
        info!("all connections finished");
    } else {
        warn!(timeout = ?CONNECTION_DRAIN_TIMEOUT, "connections still open after the drain timeout; closing them");
    }
    let _ = stop_admin.send(());
    let _ = admin.await;
    Ok(())
}

#[cfg(test)]
mod tests;
