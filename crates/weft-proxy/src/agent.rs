//! The control-plane agent: keeps one `DataplaneDiscovery.Stream` open,
//! turns each `ProxyConfig` into the running config through the one
//! mutator ([`Listeners`]) and answers ACK or NACK.
//!
//! When the stream fails or ends, the proxy keeps serving its last good
//! config and reconnects with jittered exponential backoff, saying in its
//! `Hello` which version it runs.
//!
//! A config with mTLS on is applied only once the proxy has a certificate
//! for its `issuer_id`. If none can be obtained, or one of its addresses
//! cannot be bound, the config is NACKed with the reason, the last good one
//! keeps running, and the agent retries the same config with backoff
//! (`pending`), ACKing it once it applies, unless a newer config replaced
//! it.

mod pending;

use std::{convert::Infallible, sync::Arc, time::Duration};

use anyhow::{Context as _, anyhow};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Endpoint};
use tracing::{error, info, warn};
use weft_api::{
    Dataplane, Resource, VERSION,
    proto::{
        Ack, DeregisterRequest, Hello, Nack, ProxyConfig, ProxyMessage,
        dataplane_discovery_client::DataplaneDiscoveryClient, proxy_message::Kind,
    },
};

use self::pending::{Pending, Wait};
use crate::{
    backoff::Backoff,
    certs::{Certs, GrpcSource, Requester},
    config::Config,
    http::errors::chain,
    listeners::{ApplyError, Listeners},
    metrics::Metrics,
    status::Status,
    tap::{TapHub, TapIdentity},
    telemetry::Telemetry,
    tls::Identity,
};

/// How long one connection attempt to the control plane may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on the stream, so a control plane that vanished without
/// closing the connection (host down, network cut) is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays: short, since the proxy has nothing better to do.
const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How often the proxy sends its traffic counters by default (`weft stat`).
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(5);

/// This proxy's side of the control-plane protocol.
#[derive(Debug)]
pub struct Agent {
    endpoint: Endpoint,
    mesh: String,
    name: String,
    /// The Dataplane resource as the control plane expects it in `Hello`.
    dataplane_json: String,
    /// The dataplane token, or empty when the proxy was given none.
    token: String,
    identity: Arc<Identity>,
    certs: Arc<Certs>,
    /// The running taps, fed every finished request; started and stopped
    /// over the Tap stream of each session.
    taps: Arc<TapHub>,
    /// How often a `StatsReport` goes on the stream.
    stats_interval: Duration,
    /// Tracing and AccessLog sinks; only `try_apply` touches them, the lock
    /// is never contended.
    telemetry: std::sync::Mutex<Telemetry>,
}

/// What became of one config.
enum Outcome {
    Applied,
    /// Invalid, or cannot be applied as it is: the control plane must act.
    Rejected(String),
    /// Valid, but not applicable yet: worth retrying as it is.
    NotYet(Wait, String),
}

/// How a session with the control plane ended.
enum Ended {
    Connect(tonic::transport::Error),
    Status(tonic::Status),
    Closed,
}

impl Agent {
    /// Fails if `control_plane` is not a URL, or is https without a
    /// usable CA certificate (`cp_ca_pem`) to verify it.
    pub fn new(
        control_plane: &str,
        cp_ca_pem: Option<&str>,
        dataplane: &Dataplane,
        token: Option<String>,
        identity: Arc<Identity>,
        stats_interval: Duration,
    ) -> anyhow::Result<Self> {
        if stats_interval.is_zero() {
            anyhow::bail!("the stats interval must be above zero");
        }
        let endpoint = Endpoint::from_shared(control_plane.to_owned())
            .with_context(|| format!("invalid control-plane address {control_plane:?}"))?;
        let endpoint = crate::cp_tls::secure(endpoint, cp_ca_pem)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let token = token.unwrap_or_default();
        let requester = Requester {
            mesh: dataplane.mesh.clone(),
            dataplane: dataplane.name.clone(),
            token: token.clone(),
            services: dataplane_services(dataplane),
        };
        // Certificates go over their own channel, which reconnects by
        // itself: renewals must work whatever state the stream is in.
        let source = Arc::new(GrpcSource::new(endpoint.connect_lazy()));
        let certs = Arc::new(Certs::new(source, identity.clone(), requester));
        let taps = Arc::new(TapHub::default());
        identity.observer().install("tap", Some(taps.clone()));
        Ok(Self {
            endpoint,
            mesh: dataplane.mesh.clone(),
            name: dataplane.name.clone(),
            dataplane_json: Resource::Dataplane(dataplane.clone())
                .to_value()
                .to_string(),
            token,
            telemetry: std::sync::Mutex::new(Telemetry::new(identity.clone())),
            identity,
            certs,
            taps,
            stats_interval,
        })
    }

    /// Issues and renews this proxy's certificate; shared with the renewal
    /// task.
    pub fn certs(&self) -> Arc<Certs> {
        self.certs.clone()
    }

    /// Talks to the control plane forever, reconnecting as needed; stops
    /// only when dropped.
    pub async fn run(&self, listeners: &mut Listeners, status: &Status) -> Infallible {
        let mut backoff = Backoff::new(RECONNECT_INITIAL, RECONNECT_MAX);
        loop {
            let mut got_config = false;
            let ended = self.session(listeners, status, &mut got_config).await;
            status.metrics().control_plane_connected.set(0);
            // A session that delivered a config was healthy: whatever broke
            // it is news, so retry soon.
            if got_config {
                backoff.reset();
            }
            log_end(&ended);
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// One stream, from connect to its end.
    async fn session(
        &self,
        listeners: &mut Listeners,
        status: &Status,
        got_config: &mut bool,
    ) -> Ended {
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(e) => return Ended::Connect(e),
        };
        let mut client = DataplaneDiscoveryClient::new(channel.clone());
        let (replies, outgoing) = mpsc::channel(4);
        // Queued before the call so that it is the stream's first message.
        let hello = Kind::Hello(Hello {
            dataplane_json: self.dataplane_json.clone(),
            proxy_version: VERSION.to_owned(),
            running_version: status.running_version(),
            token: self.token.clone(),
            wall_clock_unix_ms: now_unix_ms(),
        });
        if replies
            .send(ProxyMessage { kind: Some(hello) })
            .await
            .is_err()
        {
            return Ended::Closed;
        }
        let mut configs = match client.stream(ReceiverStream::new(outgoing)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Ended::Status(status),
        };
        info!(control_plane = %self.endpoint.uri(), "connected to the control plane");
        status.metrics().control_plane_connected.set(1);
        let _reports = AbortOnDrop(tokio::spawn(send_reports(
            replies.clone(),
            status.metrics().clone(),
            self.stats_interval,
        )));
        // The Tap stream lives as long as this session.
        let tap_identity = TapIdentity {
            mesh: self.mesh.clone(),
            dataplane: self.name.clone(),
            token: self.token.clone(),
        };
        let _tap = AbortOnDrop(tokio::spawn(crate::tap::run_session(
            channel,
            tap_identity,
            self.taps.clone(),
        )));
        let mut pending: Option<Pending> = None;
        loop {
            let retry = Pending::due(pending.as_ref());
            // `message()` keeps its state in the stream, so losing the race
            // to a retry loses nothing.
            let (msg, retrying) = tokio::select! {
                message = configs.message() => match message {
                    Ok(Some(msg)) => (msg, false),
                    Ok(None) => return Ended::Closed,
                    Err(status) => return Ended::Status(status),
                },
                () = retry => match &pending {
                    Some(p) => (p.config.clone(), true),
                    None => continue,
                },
            };
            *got_config = true;
            let version = msg.version;
            let reply = match self.apply(msg.clone(), listeners, status).await {
                Outcome::Applied => {
                    pending = None;
                    Some(Kind::Ack(Ack { version }))
                }
                Outcome::Rejected(reason) => {
                    pending = None;
                    Some(Kind::Nack(Nack { version, reason }))
                }
                Outcome::NotYet(wait, reason) => {
                    // A new config starts its own backoff; a retry goes on
                    // with the one it had.
                    let mut p = match pending.take() {
                        Some(p) if retrying => p,
                        _ => Pending::new(msg, wait),
                    };
                    let delay = p.schedule();
                    pending = Some(p);
                    warn!(version, %reason, retry_in = ?delay, "config waits for {wait}; keeping the last good one");
                    // Said once per config; retries that fail again are
                    // only logged.
                    (!retrying).then_some(Kind::Nack(Nack { version, reason }))
                }
            };
            if let Some(reply) = reply
                && replies
                    .send(ProxyMessage { kind: Some(reply) })
                    .await
                    .is_err()
            {
                return Ended::Closed;
            }
        }
    }

    /// Validates and applies one config.
    async fn apply(&self, msg: ProxyConfig, listeners: &mut Listeners, status: &Status) -> Outcome {
        let version = msg.version;
        match self.try_apply(msg, listeners).await {
            Ok(config) => {
                let first = status.config().is_none();
                status.set_config(Arc::new(config));
                if first {
                    info!(dataplane = %format_args!("{}/{}", self.mesh, self.name), version, "proxy ready");
                } else {
                    info!(version, "config applied");
                }
                Outcome::Applied
            }
            Err(outcome) => {
                if let Outcome::Rejected(reason) = &outcome {
                    warn!(version, %reason, "config rejected; keeping the last good one");
                }
                outcome
            }
        }
    }

    async fn try_apply(
        &self,
        msg: ProxyConfig,
        listeners: &mut Listeners,
    ) -> Result<Config, Outcome> {
        let config = Config::from_proto(msg).map_err(|e| Outcome::Rejected(e.to_string()))?;
        if config.mesh != self.mesh || config.dataplane != self.name {
            return Err(Outcome::Rejected(format!(
                "config is for dataplane {}/{}, this proxy runs {}/{}",
                config.mesh, config.dataplane, self.mesh, self.name
            )));
        }
        // Before anything changes: peers of a config with mTLS on expect
        // this proxy to present a certificate of the config's issuer.
        if config.mtls.is_on() {
            self.certs
                .ensure(&config.mtls.issuer_id, &config.mtls.trust_bundle)
                .await
                .map_err(|e| {
                    Outcome::NotYet(
                        Wait::Certificate,
                        format!("cannot obtain a workload certificate: {e}"),
                    )
                })?;
        }
        listeners.apply(&config).await.map_err(|e| match e {
            ApplyError::Bind { .. } => Outcome::NotYet(Wait::Bind, e.to_string()),
            ApplyError::Tls(_) => Outcome::Rejected(e.to_string()),
        })?;
        self.identity.apply(&config.mtls);
        // Poisoned only by a panic mid-apply; the next apply redoes it all.
        self.telemetry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&config);
        Ok(config)
    }

    /// Tells the control plane this proxy is going away, so that callers
    /// drop it from their endpoint sets before it stops listening.
    pub async fn deregister(&self) -> anyhow::Result<()> {
        let channel = self
            .endpoint
            .connect()
            .await
            .context("cannot reach the control plane")?;
        let request = DeregisterRequest {
            mesh: self.mesh.clone(),
            name: self.name.clone(),
            token: self.token.clone(),
        };
        DataplaneDiscoveryClient::new(channel)
            .deregister(request)
            .await
            .map_err(|s| anyhow!("{:?}: {}", s.code(), s.message()))?;
        Ok(())
    }
}

/// This host's wall clock in unix milliseconds, for the control plane's
/// clock comparison.
fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Sends the traffic counters every `interval` while the stream is up. A
/// report that finds the queue full is skipped: the next one carries the
/// same counters, and ACKs must not wait behind reports.
async fn send_reports(
    replies: mpsc::Sender<ProxyMessage>,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    // The first report after one interval: at connect there is nothing new.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let report = Kind::StatsReport(metrics.report());
        if let Err(mpsc::error::TrySendError::Closed(_)) =
            replies.try_send(ProxyMessage { kind: Some(report) })
        {
            return;
        }
    }
}

/// Aborts a task when the session that started it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The services a Dataplane serves: the `service` tags of its inbounds,
/// each once, in order.
fn dataplane_services(dataplane: &Dataplane) -> Vec<String> {
    let mut services: Vec<String> = Vec::new();
    for inbound in &dataplane.networking.inbound {
        if let Some(service) = inbound.tags.get(weft_api::dataplane::SERVICE_TAG)
            && !services.contains(service)
        {
            services.push(service.clone());
        }
    }
    services
}

/// Refusals are the control plane saying this proxy cannot register as it
/// is (bad Dataplane, unknown mesh): retrying will not help until someone
/// acts, so they are errors. "Already connected" is not one: it mostly
/// means the control plane has not yet noticed that this proxy's own
/// previous stream died (it does within its keepalive, about 15 s), so it
/// is a warning, like anything else transient; a second proxy under the
/// same name keeps saying it on every retry.
fn log_end(ended: &Ended) {
    match ended {
        Ended::Connect(e) => warn!(error = %chain(e), "cannot reach the control plane; retrying"),
        Ended::Status(s) if s.code() == Code::AlreadyExists => warn!(
            message = s.message(),
            "the control plane still has a stream for this dataplane, most likely this proxy's previous one, until it notices that one is gone; retrying"
        ),
        Ended::Status(s)
            if matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition) =>
        {
            error!(code = ?s.code(), "control plane refused this proxy: {}", s.message());
        }
        Ended::Status(s) => {
            warn!(code = ?s.code(), message = s.message(), "control-plane stream failed; reconnecting")
        }
        Ended::Closed => warn!("control plane closed the stream; reconnecting"),
    }
}
