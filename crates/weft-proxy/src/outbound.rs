//! Outbound: the local app's traffic to another service, spread over that
//! service's endpoints round robin (per connection for TCP, per request for
//! HTTP) over the endpoint set of the latest config.
//!
//! The stacks, from the accepted connection inwards:
//! * TCP: accept → pick an endpoint → connect, with mTLS while the mode is
//!   on (failover on refusal or a failed handshake) → splice.
//! * HTTP: accept → HTTP/1.1 or HTTP/2 server → pick an endpoint per request
//!   → strip hop-by-hop headers → pooled client to the endpoint's proxy
//!   (HTTP/1.1 for `http`, HTTP/2 for `http2`/`grpc`; mTLS while the mode
//!   is on), failing over to the next endpoints while the request can be
//!   replayed.
//!
//! With mTLS, the peer must prove it is the outbound's service
//! (`spiffe://<mesh>/<service>`); any other peer fails the connection.
//!
//! An outbound with traffic policies (Timeout, Retry, …) hands its
//! connections and requests to the `policy` stacks instead; one without
//! keeps this plain path, so policies cost nothing where none applies.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::{
    balancer::{Balancer, Candidates},
    config::{EndpointConfig, OutboundConfig},
    drain::Watch,
    http::{self, client::Upstream, errors::chain, forward},
    observe::{Edge, Observer},
    policy::{
        body::Guard,
        http::{HttpPolicies, OutboundBody},
        idle::Activity,
        tcp::TcpPolicies,
    },
    tcp,
    tls::{
        Identity,
        client::{Alpn, PeerStream, PeerTls},
    },
};

/// How many endpoints one connection or request may try before failing.
pub const MAX_ATTEMPTS: usize = 3;

/// An outbound that copies bytes to an endpoint chosen per connection.
#[derive(Debug)]
pub struct OutboundTcp {
    service: String,
    tls: PeerTls,
    balancer: Balancer<SocketAddr>,
    policies: Option<Arc<TcpPolicies>>,
    observer: Arc<Observer>,
    edge: Arc<Edge>,
}

/// An outbound that forwards each HTTP request to an endpoint chosen for
/// that request.
#[derive(Debug)]
pub struct OutboundHttp {
    service: String,
    http2: bool,
    tls: PeerTls,
    balancer: Balancer<Upstream>,
    policies: Option<Arc<HttpPolicies>>,
    observer: Arc<Observer>,
    edge: Arc<Edge>,
}

/// Who this outbound's traffic goes from and to, and the TrafficRoute
/// that routes it.
fn outbound_edge(config: &OutboundConfig, identity: &Identity) -> Arc<Edge> {
    let route = config
        .policies
        .traffic_route
        .as_ref()
        .map(|r| r.name.as_str());
    identity.observer().outbound_edge(&config.service, route)
}

impl OutboundTcp {
    pub fn new(config: &OutboundConfig, identity: &Arc<Identity>) -> Result<Self, rustls::Error> {
        let tls = PeerTls::new(identity.clone(), &config.service, Alpn::None)?;
        let policies = (config.policies != Default::default()).then(|| {
            TcpPolicies::new(
                &config.service,
                &config.policies,
                tls.clone(),
                identity.policy_stats().clone(),
            )
        });
        let outbound = Self {
            service: config.service.clone(),
            tls,
            balancer: Balancer::new(Vec::new()),
            policies,
            observer: identity.observer().clone(),
            edge: outbound_edge(config, identity),
        };
        outbound.update(&config.endpoints);
        Ok(outbound)
    }

    /// Swaps in a new endpoint set; connections already made keep theirs.
    pub fn update(&self, endpoints: &[EndpointConfig]) {
        if let Some(policies) = &self.policies {
            return policies.update(endpoints);
        }
        self.balancer
            .store(endpoints.iter().map(|e| e.address).collect());
    }
}

impl OutboundHttp {
    pub fn new(config: &OutboundConfig, identity: &Arc<Identity>) -> Result<Self, rustls::Error> {
        let http2 = config.protocol.is_http2();
        let alpn = if http2 { Alpn::H2 } else { Alpn::Http1 };
        let tls = PeerTls::new(identity.clone(), &config.service, alpn)?;
        let policies = (config.policies != Default::default()).then(|| {
            HttpPolicies::new(
                &config.service,
                &config.policies,
                http2,
                tls.clone(),
                identity.policy_stats().clone(),
            )
        });
        let outbound = Self {
            service: config.service.clone(),
            http2,
            tls,
            balancer: Balancer::new(Vec::new()),
            policies,
            observer: identity.observer().clone(),
            edge: outbound_edge(config, identity),
        };
        outbound.update(&config.endpoints);
        Ok(outbound)
    }

    /// The endpoints requests are balanced over now (without policies).
    #[cfg(test)]
    pub fn endpoint_addrs(&self) -> Vec<SocketAddr> {
        self.balancer.endpoints().iter().map(|u| u.addr()).collect()
    }

    /// Swaps in a new endpoint set. Endpoints that stay keep their
    /// connection pools; requests in flight finish on the set they picked
    /// from.
    pub fn update(&self, endpoints: &[EndpointConfig]) {
        if let Some(policies) = &self.policies {
            return policies.update(endpoints);
        }
        let current = self.balancer.endpoints();
        let pools: HashMap<SocketAddr, &Upstream> = current.iter().map(|u| (u.addr(), u)).collect();
        let next = endpoints
            .iter()
            .map(|e| match pools.get(&e.address) {
                Some(upstream) => (*upstream).clone(),
                None => Upstream::peer(e.address, self.http2, self.tls.clone()),
            })
            .collect();
        self.balancer.store(next);
    }
}

/// Splices one app connection to an endpoint of the service. With no
/// endpoints, or none reachable, the connection is closed at once.
pub async fn serve_tcp(outbound: Arc<OutboundTcp>, stream: TcpStream) {
    let mut observation = outbound
        .observer
        .open(&outbound.edge, stream.peer_addr().ok());
    if let Some(policies) = &outbound.policies {
        return policies.serve(stream, observation).await;
    }
    let Some(pick) = outbound.balancer.pick() else {
        debug!(service = %outbound.service, "no endpoints; closing the connection");
        return;
    };
    // The mode of the moment decides for this whole connection.
    let tls = outbound.tls.enabled().then_some(&outbound.tls);
    for &endpoint in pick.candidates(MAX_ATTEMPTS) {
        match PeerStream::connect(endpoint, tls, None).await {
            Ok(upstream) => {
                observation.connected(endpoint);
                return tcp::splice(observation.count(stream), upstream).await;
            }
            Err(e) => {
                warn!(service = %outbound.service, %endpoint, error = %chain(&e), "cannot connect to endpoint")
            }
        }
    }
    debug!(service = %outbound.service, "no endpoint reachable; closing the connection");
}

/// Serves HTTP on one app connection, balancing every request.
pub async fn serve_http(outbound: Arc<OutboundHttp>, stream: TcpStream, drain: Watch) {
    if let Some(policies) = outbound.policies.clone() {
        let observed = (outbound.observer.clone(), outbound.edge.clone());
        // Boxed: inline, its state would make every plain outbound
        // connection's task as large, idle ones included.
        return Box::pin(serve_http_with_policies(policies, observed, stream, drain)).await;
    }
    let handler = {
        let drain = drain.clone();
        move |req| {
            let outbound = outbound.clone();
            let drain = drain.clone();
            let (observation, req) = outbound.observer.begin(&outbound.edge, req);
            async move {
                let pick = outbound.balancer.pick();
                let candidates = match &pick {
                    Some(pick) => pick.candidates(MAX_ATTEMPTS),
                    None => Candidates::none(),
                };
                let response = forward::proxy(&outbound.service, candidates, req, &drain).await;
                observation.respond(response.map(OutboundBody::Left))
            }
        }
    };
    http::serve(stream, handler, drain).await;
}

/// [`serve_http`] through the policy stack.
async fn serve_http_with_policies(
    policies: Arc<HttpPolicies>,
    (observer, edge): (Arc<Observer>, Arc<Edge>),
    stream: TcpStream,
    drain: Watch,
) {
    let Ok(_connection) = policies.admit_connection() else {
        return;
    };
    let source = stream.peer_addr().ok();
    let idle = policies.idle_timeout();
    let activity = idle.map(|_| Activity::new());
    let handler = {
        let (drain, activity) = (drain.clone(), activity.clone());
        move |req| {
            let policies = policies.clone();
            let drain = drain.clone();
            let busy = activity.as_ref().map(|a| Box::new(a.busy()) as Guard);
            let (observation, req) = observer.begin(&edge, req);
            async move { observation.respond(policies.handle(req, source, &drain, busy).await) }
        }
    };
    let serve = http::serve(stream, handler, drain);
    match (idle, activity) {
        (Some(limit), Some(activity)) => tokio::select! {
            () = serve => {}
            () = activity.idle(limit) => debug!(?limit, "no request on the connection for the idle timeout; closing it"),
        },
        _ => serve.await,
    }
}
