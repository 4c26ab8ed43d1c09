//! Simulated proxies: each opens a `DataplaneDiscovery.Stream` to the
//! control plane, sends `Hello` with a valid Dataplane, and ACKs every
//! config it receives, reporting when it got which config. Streams are
//! spread over several HTTP/2 connections (a tonic server allows 200
//! concurrent streams per connection by default).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use serde_json::json;
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use weft_api::{
    Resource,
    proto::{
        Ack, Hello, ProxyConfig, ProxyMessage,
        dataplane_discovery_client::DataplaneDiscoveryClient, proxy_message::Kind,
    },
};

/// Streams per HTTP/2 connection.
pub const STREAMS_PER_CONNECTION: usize = 100;
/// Streams being opened at once (registration is one store write each).
const OPENING: usize = 256;

/// One simulated proxy's Dataplane.
#[derive(Debug, Clone)]
pub struct SimDataplane {
    pub name: String,
    /// The service its one inbound serves.
    pub service: String,
    pub inbound_port: u16,
    /// Outbound port and service, if it calls one.
    pub outbound: Option<(u16, String)>,
}

impl SimDataplane {
    /// The Dataplane as the JSON a proxy sends in `Hello`, built and
    /// validated through `weft_api::Resource`.
    pub fn json(&self) -> anyhow::Result<String> {
        let mut networking = json!({
            "address": "127.0.0.1",
            "inbound": [{
                "port": self.inbound_port,
                // Nothing listens behind a simulated proxy: the discard port.
                "servicePort": if self.inbound_port == 9 { 19 } else { 9 },
                "tags": { "service": self.service, "protocol": "http" },
            }],
        });
        if let Some((port, service)) = &self.outbound {
            networking["outbound"] = json!([{ "port": port, "service": service }]);
        }
        let value = json!({
            "type": "Dataplane",
            "mesh": "default",
            "name": self.name,
            "networking": networking,
        });
        let resource = Resource::from_value(value)
            .map_err(|e| anyhow::anyhow!("invalid simulated dataplane {}: {e}", self.name))?;
        Ok(resource.to_value().to_string())
    }
}

/// What simulated proxies report.
#[derive(Debug)]
pub enum Event {
    /// Proxy `sim` received (and acked) a config at `at`; `marked` tells
    /// whether an outbound lists an endpoint of the marker dataplane.
    Config {
        sim: usize,
        at: Instant,
        version: u64,
        marked: bool,
    },
    /// Its stream ended or could not open.
    Ended { sim: usize, error: String },
}

/// Whether any outbound of `config` lists an endpoint of dataplane `marker`.
pub fn lists_endpoint(config: &ProxyConfig, marker: &str) -> bool {
    config
        .outbounds
        .iter()
        .any(|o| o.endpoints.iter().any(|e| e.dataplane == marker))
}

/// Opens `count` HTTP/2 connections to the control plane's proxy port.
pub async fn connect(dp_url: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let channel = Endpoint::from_shared(dp_url.to_owned())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot connect to {dp_url}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Connections needed for `streams` streams.
pub fn connections_for(streams: usize) -> usize {
    streams.div_ceil(STREAMS_PER_CONNECTION).max(1)
}

/// Runs simulated proxies until the returned set is dropped or aborted.
pub struct Fleet {
    pub tasks: JoinSet<()>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// Starts one simulated proxy per Dataplane (index = its `sim` number);
/// configs are checked for `marker`. `token` goes in every `Hello` (empty
/// while the control plane does not ask for dataplane tokens).
pub fn start(
    channels: &[Channel],
    dataplanes: Vec<SimDataplane>,
    marker: Option<String>,
    token: &str,
) -> anyhow::Result<Fleet> {
    let (tx, events) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let opening = Arc::new(Semaphore::new(OPENING));
    let marker: Arc<str> = marker.unwrap_or_default().into();
    let token: Arc<str> = token.into();
    for (sim, dp) in dataplanes.into_iter().enumerate() {
        let json = dp.json()?;
        let client = DataplaneDiscoveryClient::new(channels[sim % channels.len()].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let sim_args = (sim, json, token.clone(), marker.clone());
        tasks.spawn(run_one(sim_args, client, tx.clone(), opening.clone()));
    }
    Ok(Fleet { tasks, events })
}

/// (sim number, Dataplane JSON, token, marker)
type SimArgs = (usize, String, Arc<str>, Arc<str>);

async fn run_one(
    (sim, dataplane_json, token, marker): SimArgs,
    mut client: DataplaneDiscoveryClient<Channel>,
    events: mpsc::UnboundedSender<Event>,
    opening: Arc<Semaphore>,
) {
    let ended = |error: String| {
        let _ = events.send(Event::Ended { sim, error });
    };
    let Ok(permit) = opening.acquire_owned().await else {
        return;
    };
    let (replies, outgoing) = mpsc::channel(4);
    let hello = Kind::Hello(Hello {
        dataplane_json,
        proxy_version: format!("weft-bench {}", weft_api::VERSION),
        token: token.to_string(),
        ..Default::default()
    });
    if replies
        .send(ProxyMessage { kind: Some(hello) })
        .await
        .is_err()
    {
        return;
    }
    let mut configs = match client.stream(ReceiverStream::new(outgoing)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return ended(format!("{:?}: {}", s.code(), s.message())),
    };
    let mut permit = Some(permit);
    loop {
        match configs.message().await {
            Ok(Some(config)) => {
                let at = Instant::now();
                let version = config.version;
                let marked = !marker.is_empty() && lists_endpoint(&config, &marker);
                let ack = Kind::Ack(Ack { version });
                let _ = replies.send(ProxyMessage { kind: Some(ack) }).await;
                let _ = events.send(Event::Config {
                    sim,
                    at,
                    version,
                    marked,
                });
                // Registered: let the next one open.
                permit.take();
            }
            Ok(None) => return ended("the control plane ended the stream".into()),
            Err(s) => return ended(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_api::proto::{Endpoint, Outbound};

    use super::*;

    #[test]
    fn dataplane_json_is_valid() {
        let dp = SimDataplane {
            name: "sim-7".into(),
            service: "sim".into(),
            inbound_port: 20007,
            outbound: Some((15001, "target".into())),
        };
        let v: serde_json::Value = serde_json::from_str(&dp.json().unwrap()).unwrap();
        assert_eq!(v["name"], "sim-7");
        assert_eq!(v["networking"]["outbound"][0]["service"], "target");
        let bad = SimDataplane {
            name: "Not A Name".into(),
            ..dp
        };
        assert!(bad.json().is_err());
    }

    #[test]
    fn finds_the_marker_endpoint() {
        let mut config = ProxyConfig::default();
        assert!(!lists_endpoint(&config, "target-1"));
        config.outbounds.push(Outbound {
            endpoints: vec![Endpoint {
                dataplane: "target-1".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(lists_endpoint(&config, "target-1"));
        assert!(!lists_endpoint(&config, "target-2"));
    }

    #[test]
    fn connection_count() {
        assert_eq!(connections_for(1), 1);
        assert_eq!(connections_for(100), 1);
        assert_eq!(connections_for(101), 2);
        assert_eq!(connections_for(10_000), 100);
    }
}
