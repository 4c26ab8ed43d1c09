//! Inbound: mesh traffic arriving on one of this workload's ports, handed
//! to the local service. TCP is spliced as bytes; HTTP is parsed so that
//! keep-alive, HTTP/2 multiplexing, trailers and upgrades work per request
//! over a pooled connection to the service.
//!
//! The stacks, from the accepted connection inwards:
//! * TCP: accept → mTLS by mode (identify the peer) → authorize (close if
//!   denied) → rate limit (close when over) → connect to the service →
//!   splice.
//! * HTTP: accept → mTLS by mode (identify the peer) → HTTP/1.1 or HTTP/2
//!   server → attach the peer's identity → authorize (403 if denied) →
//!   rate limit (429 over a RateLimit) → strip hop-by-hop headers → pooled client to the service (HTTP/1.1, or
//!   HTTP/2 for `http2`/`grpc`).

use std::{iter, net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tracing::{debug, warn};

use crate::{
    authz::Authz,
    config::InboundConfig,
    drain::Watch,
    http::{self, client::Upstream, forward},
    observe::{self, ConnectionObservation, Observer},
    policy::{
        rate_limit::InboundRateLimits,
        responses,
        stats::{Event, PolicyStats},
    },
    tcp,
    tls::{
        Identity, PeerIdentity,
        server::{Accepted, InboundTls},
    },
};

/// An inbound that copies bytes to the local service.
#[derive(Debug)]
pub struct InboundTcp {
    service: String,
    target: SocketAddr,
    tls: InboundTls,
    authz: Authz,
    rate_limits: InboundRateLimits,
    stats: Arc<PolicyStats>,
    observer: Arc<Observer>,
}

/// An inbound that forwards HTTP requests to the local service.
#[derive(Debug)]
pub struct InboundHttp {
    service: String,
    upstream: Upstream,
    tls: InboundTls,
    authz: Authz,
    rate_limits: InboundRateLimits,
    stats: Arc<PolicyStats>,
    observer: Arc<Observer>,
}

impl InboundTcp {
    pub fn new(config: &InboundConfig, identity: &Arc<Identity>) -> Result<Self, rustls::Error> {
        Ok(Self {
            service: config.service.clone(),
            target: config.service_address,
            tls: InboundTls::new(identity.clone())?,
            authz: Authz::new(config, identity),
            rate_limits: InboundRateLimits::new(&config.rate_limits),
            stats: identity.policy_stats().clone(),
            observer: identity.observer().clone(),
        })
    }
}

impl InboundHttp {
    pub fn new(config: &InboundConfig, identity: &Arc<Identity>) -> Result<Self, rustls::Error> {
        Ok(Self {
            service: config.service.clone(),
            upstream: Upstream::new(config.service_address, config.protocol.is_http2()),
            tls: InboundTls::new(identity.clone())?,
            authz: Authz::new(config, identity),
            rate_limits: InboundRateLimits::new(&config.rate_limits),
            stats: identity.policy_stats().clone(),
            observer: identity.observer().clone(),
        })
    }
}

/// Splices one mesh connection to the local service; closes it if the
/// caller is refused or the service cannot be reached.
pub async fn serve_tcp(inbound: Arc<InboundTcp>, stream: TcpStream) {
    let client = stream.peer_addr().ok();
    let Some(accepted) = inbound.tls.accept(stream).await else {
        return;
    };
    let peer = accepted.peer();
    let services = inbound.authz.services_of(&peer);
    let edge = observe::inbound_edge(&inbound.service, &services);
    let observation = inbound.observer.open(&edge, client);
    debug!(service = %inbound.service, peer = %peer, "inbound TCP connection");
    if !inbound.authz.check_tcp(&peer, &services) {
        // Dropping the stream closes it: TCP has no way to say why.
        return;
    }
    if !inbound.rate_limits.is_empty()
        && let Err(limited) = inbound
            .rate_limits
            .check(inbound.authz.policy_services(&services))
    {
        inbound.stats.count(&inbound.service, Event::RateLimited);
        debug!(service = %inbound.service, peer = %peer, policy = %limited.policy, "connection over the rate limit; closing it");
        return;
    }
    match accepted {
        Accepted::Plaintext(stream) => splice_to_service(&inbound, stream, observation).await,
        Accepted::Mtls(stream, _) => splice_to_service(&inbound, stream, observation).await,
    }
}

async fn splice_to_service<S>(
    inbound: &InboundTcp,
    stream: S,
    mut observation: ConnectionObservation,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tcp::connect(inbound.target).await {
        Ok(local) => {
            observation.connected(inbound.target);
            tcp::splice(observation.count(stream), local).await;
        }
        Err(e) => warn!(
            service = %inbound.service,
            target = %inbound.target,
            error = %e,
            "cannot connect to the local service; closing the connection"
        ),
    }
}

/// Serves HTTP on one mesh connection, forwarding every request to the
/// local service with the caller's identity attached.
pub async fn serve_http(inbound: Arc<InboundHttp>, stream: TcpStream, drain: Watch) {
    let Some(accepted) = inbound.tls.accept(stream).await else {
        return;
    };
    let peer = accepted.peer();
    // The peer's identity is fixed for the connection.
    let services = inbound.authz.services_of(&peer);
    let edge = observe::inbound_edge(&inbound.service, &services);
    let handler = {
        let drain = drain.clone();
        move |mut req: ::http::Request<hyper::body::Incoming>| {
            let inbound = inbound.clone();
            let drain = drain.clone();
            debug!(service = %inbound.service, peer = %peer, path = req.uri().path(), "inbound request");
            // For the authorization layer; cloning is an `Arc` bump.
            req.extensions_mut().insert::<PeerIdentity>(peer.clone());
            let denied = inbound.authz.check_http(&peer, &services, &req).err();
            let limited = match denied {
                None if !inbound.rate_limits.is_empty() => inbound
                    .rate_limits
                    .check(inbound.authz.policy_services(&services))
                    .err(),
                _ => None,
            };
            let (observation, req) = inbound.observer.begin(&edge, req);
            async move {
                let response = if let Some(reason) = denied {
                    http::errors::denied(reason)
                } else if let Some(limited) = limited {
                    inbound.stats.count(&inbound.service, Event::RateLimited);
                    responses::rate_limited(&limited.policy, limited.retry_after)
                } else {
                    forward::proxy(&inbound.service, iter::once(&inbound.upstream), req, &drain)
                        .await
                };
                observation.respond(response)
            }
        }
    };
    match accepted {
        Accepted::Plaintext(stream) => http::serve(stream, handler, drain).await,
        Accepted::Mtls(stream, _) => http::serve(stream, handler, drain).await,
    }
}
