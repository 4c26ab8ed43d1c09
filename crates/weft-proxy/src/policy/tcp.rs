//! The TCP outbound with policies, from the outside in: circuit-breaker
//! connection limit (over it: closed) → fault injection (abort: closed;
//! delay: before connecting) → route (a TrafficRoute rule without
//! conditions) → connect with the Timeout's connect limit, failing over to
//! other endpoints (outlier detection counts refusals) → splice, closed
//! after the Timeout's `idle`.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::{
    destination::Destination,
    fault, health, idle,
    outlier::Outcome,
    route,
    stats::{Event, PolicyStats},
};
use crate::{
    config::{EndpointConfig, policies::OutboundPolicies},
    http::errors::chain,
    observe::ConnectionObservation,
    outbound::MAX_ATTEMPTS,
    tcp,
    tls::client::{PeerStream, PeerTls},
};

/// A TCP outbound's policies and the state they keep.
#[derive(Debug)]
pub struct TcpPolicies {
    config: OutboundPolicies,
    destination: Destination<()>,
    tls: PeerTls,
}

impl TcpPolicies {
    pub fn new(
        service: &str,
        config: &OutboundPolicies,
        tls: PeerTls,
        stats: Arc<PolicyStats>,
    ) -> Arc<Self> {
        let mut destination = Destination::new(service, config, stats.clone());
        if let Some(check) = &config.health_check {
            destination.checker = Some(health::spawn(
                check.clone(),
                Arc::downgrade(&destination.endpoints),
                health::tcp_prober(tls.clone()),
                (stats, service.to_owned()),
            ));
        }
        Arc::new(Self {
            config: config.clone(),
            destination,
            tls,
        })
    }

    pub fn update(&self, endpoints: &[EndpointConfig]) {
        self.destination.update(endpoints, |_| ());
    }

    /// Splices one app connection to an endpoint chosen by the policies.
    /// `observation` learns the endpoint and counts the client's bytes.
    pub async fn serve(&self, stream: TcpStream, mut observation: ConnectionObservation) {
        let destination = &self.destination;
        let service = &destination.service;
        let Ok(_connection) = destination.admit_connection() else {
            return;
        };
        if let Some(config) = &self.config.fault_injection {
            let faults = fault::decide(config);
            if let Some(delay) = faults.delay {
                destination.count(Event::FaultDelayed);
                tokio::time::sleep(delay).await;
            }
            if faults.abort.is_some() {
                destination.count(Event::FaultAborted);
                debug!(%service, policy = %config.name, "connection aborted by fault injection");
                return;
            }
        }
        let snapshot = destination.endpoints.load();
        let key = destination.hash_key(None, stream.peer_addr().ok());
        let subset = self
            .config
            .traffic_route
            .as_ref()
            .and_then(|r| route::choose(r, None, &snapshot));
        let timeout = self.config.timeout.as_ref();
        let connect_timeout = timeout
            .and_then(|t| t.connect)
            .map_or(tcp::CONNECT_TIMEOUT, |d| d.get());
        let tries = self
            .config
            .retry
            .as_ref()
            .filter(|r| r.on_connect_failure)
            .map_or(MAX_ATTEMPTS, |r| {
                usize::try_from(r.attempts).unwrap_or(MAX_ATTEMPTS)
            });
        let tls = self.tls.enabled().then_some(&self.tls);
        let mut tried: Vec<SocketAddr> = Vec::new();
        while tried.len() < tries {
            let Some(endpoint) = destination.choose(&snapshot, key, subset, &tried) else {
                break;
            };
            tried.push(endpoint.addr);
            match PeerStream::connect(endpoint.addr, tls, Some(connect_timeout)).await {
                Ok(upstream) => {
                    destination.record(&snapshot, endpoint, Outcome::Success);
                    let _active = endpoint.track();
                    observation.connected(endpoint.addr);
                    let stream = observation.count(stream);
                    match timeout.and_then(|t| t.idle) {
                        Some(limit) => idle::splice(stream, upstream, limit.get()).await,
                        None => tcp::splice(stream, upstream).await,
                    }
                    return;
                }
                Err(e) => {
                    destination.record(&snapshot, endpoint, Outcome::GatewayError);
                    warn!(%service, endpoint = %endpoint.addr, error = %chain(&e), "cannot connect to endpoint");
                }
            }
        }
        debug!(%service, "no endpoint reachable; closing the connection");
    }
}
