//! The control-plane agent: keeps one `DataplaneDiscovery.Stream` open,
//! turns each `ProxyConfig` into the running config through the one
//! mutator ([`Listeners`]) and answers ACK or NACK.
//!
//! When the stream fails or ends, the proxy keeps serving its last good
//! config and reconnects with jittered exponential backoff, saying in its
//! `Hello` which version it runs.

mod backoff;

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

use self::backoff::Backoff;
use crate::{config::Config, http::errors::chain, listeners::Listeners, status::Status};

/// How long one connection attempt to the control plane may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on the stream, so a control plane that vanished without
/// closing the connection (host down, network cut) is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// This proxy's side of the control-plane protocol.
#[derive(Debug)]
pub struct Agent {
    endpoint: Endpoint,
    mesh: String,
    name: String,
    /// The Dataplane resource as the control plane expects it in `Hello`.
    dataplane_json: String,
}

/// How a session with the control plane ended.
enum Ended {
    Connect(tonic::transport::Error),
    Status(tonic::Status),
    Closed,
}

impl Agent {
    /// Fails only if `control_plane` is not a URL.
    pub fn new(control_plane: &str, dataplane: &Dataplane) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(control_plane.to_owned())
            .with_context(|| format!("invalid control-plane address {control_plane:?}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        Ok(Self {
            endpoint,
            mesh: dataplane.mesh.clone(),
            name: dataplane.name.clone(),
            dataplane_json: Resource::Dataplane(dataplane.clone())
                .to_value()
                .to_string(),
        })
    }

    /// Talks to the control plane forever, reconnecting as needed; stops
    /// only when dropped.
    pub async fn run(&self, listeners: &mut Listeners, status: &Status) -> Infallible {
        let mut backoff = Backoff::default();
        loop {
            let mut got_config = false;
            let ended = self.session(listeners, status, &mut got_config).await;
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
        let mut client = DataplaneDiscoveryClient::new(channel);
        let (replies, outgoing) = mpsc::channel(4);
        // Queued before the call so that it is the stream's first message.
        let hello = Kind::Hello(Hello {
            dataplane_json: self.dataplane_json.clone(),
            proxy_version: VERSION.to_owned(),
            running_version: status.running_version(),
            token: String::new(),
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
        loop {
            match configs.message().await {
                Ok(Some(msg)) => {
                    *got_config = true;
                    let reply = self.apply(msg, listeners, status).await;
                    if replies
                        .send(ProxyMessage { kind: Some(reply) })
                        .await
                        .is_err()
                    {
                        return Ended::Closed;
                    }
                }
                Ok(None) => return Ended::Closed,
                Err(status) => return Ended::Status(status),
            }
        }
    }

    /// Validates and applies one config; the answer for the control plane.
    async fn apply(&self, msg: ProxyConfig, listeners: &mut Listeners, status: &Status) -> Kind {
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
                Kind::Ack(Ack { version })
            }
            Err(reason) => {
                warn!(version, %reason, "config rejected; keeping the last good one");
                Kind::Nack(Nack { version, reason })
            }
        }
    }

    async fn try_apply(
        &self,
        msg: ProxyConfig,
        listeners: &mut Listeners,
    ) -> Result<Config, String> {
        let config = Config::from_proto(msg).map_err(|e| e.to_string())?;
        if config.mesh != self.mesh || config.dataplane != self.name {
            return Err(format!(
                "config is for dataplane {}/{}, this proxy runs {}/{}",
                config.mesh, config.dataplane, self.mesh, self.name
            ));
        }
        listeners.apply(&config).await.map_err(|e| e.to_string())?;
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
            token: String::new(),
        };
        DataplaneDiscoveryClient::new(channel)
            .deregister(request)
            .await
            .map_err(|s| anyhow!("{:?}: {}", s.code(), s.message()))?;
        Ok(())
    }
}

/// Refusals are the control plane saying this proxy cannot register as it
/// is (bad Dataplane, unknown mesh, name taken): retrying will not help
/// until someone acts, so they are errors. Anything else is transient.
fn log_end(ended: &Ended) {
    match ended {
        Ended::Connect(e) => warn!(error = %chain(e), "cannot reach the control plane; retrying"),
        Ended::Status(s)
            if matches!(
                s.code(),
                Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists
            ) =>
        {
            error!(code = ?s.code(), "control plane refused this proxy: {}", s.message());
        }
        Ended::Status(s) => {
            warn!(code = ?s.code(), message = s.message(), "control-plane stream failed; reconnecting")
        }
        Ended::Closed => warn!("control plane closed the stream; reconnecting"),
    }
}
