//! Inbound: mesh traffic arriving on one of this workload's ports, handed
//! to the local service. TCP is spliced as bytes; HTTP is parsed so that
//! keep-alive, HTTP/2 multiplexing, trailers and upgrades work per request
//! over a pooled connection to the service.
//!
//! The stacks, from the accepted connection inwards:
//! * TCP: accept → connect to the service → splice.
//! * HTTP: accept → HTTP/1.1 or HTTP/2 server → strip hop-by-hop headers →
//!   pooled client to the service (HTTP/1.1, or HTTP/2 for `http2`/`grpc`).

use std::{iter, net::SocketAddr, sync::Arc};

use tokio::net::TcpStream;
use tracing::warn;

use crate::{
    config::InboundConfig,
    drain::Watch,
    http::{self, client::Upstream, forward},
    tcp,
};

/// An inbound that copies bytes to the local service.
#[derive(Debug)]
pub struct InboundTcp {
    service: String,
    target: SocketAddr,
}

/// An inbound that forwards HTTP requests to the local service.
#[derive(Debug)]
pub struct InboundHttp {
    service: String,
    upstream: Upstream,
}

impl InboundTcp {
    pub fn new(config: &InboundConfig) -> Self {
        Self {
            service: config.service.clone(),
            target: config.service_address,
        }
    }
}

impl InboundHttp {
    pub fn new(config: &InboundConfig) -> Self {
        Self {
            service: config.service.clone(),
            upstream: Upstream::new(config.service_address, config.protocol.is_http2()),
        }
    }
}

/// Splices one mesh connection to the local service; closes it if the
/// service cannot be reached.
pub async fn serve_tcp(inbound: Arc<InboundTcp>, stream: TcpStream) {
    match tcp::connect(inbound.target).await {
        Ok(local) => tcp::splice(stream, local).await,
        Err(e) => warn!(
            service = %inbound.service,
            target = %inbound.target,
            error = %e,
            "cannot connect to the local service; closing the connection"
        ),
    }
}

/// Serves HTTP on one mesh connection, forwarding every request to the
/// local service.
pub async fn serve_http(inbound: Arc<InboundHttp>, stream: TcpStream, drain: Watch) {
    let handler = {
        let drain = drain.clone();
        move |req| {
            let inbound = inbound.clone();
            let drain = drain.clone();
            async move {
                forward::proxy(&inbound.service, iter::once(&inbound.upstream), req, &drain).await
            }
        }
    };
    http::serve(stream, handler, drain).await;
}
