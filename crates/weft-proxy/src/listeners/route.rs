//! What a listener does with the connections it accepts: one of the four
//! stacks (inbound or outbound, TCP or HTTP), built from its config.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpStream;
use weft_api::Protocol;

use crate::{
    authz::PermissionConfig,
    config::{EndpointConfig, InboundConfig, OutboundConfig, OutboundPolicies, RateLimitConfig},
    drain::Watch,
    inbound::{self, InboundHttp, InboundTcp},
    outbound::{self, OutboundHttp, OutboundTcp},
    tls::Identity,
};

/// A listener's stack. Cloning shares it.
#[derive(Debug, Clone)]
pub enum Route {
    InboundTcp(Arc<InboundTcp>),
    InboundHttp(Arc<InboundHttp>),
    OutboundTcp(Arc<OutboundTcp>),
    OutboundHttp(Arc<OutboundHttp>),
}

/// What identifies a listener's stack: a running listener whose spec is
/// unchanged keeps running (an outbound only gets its endpoints swapped);
/// any other change replaces the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Inbound {
        protocol: Protocol,
        service: String,
        target: SocketAddr,
        /// New permissions or rate limits make a new stack; open
        /// connections drain.
        permissions: Vec<PermissionConfig>,
        rate_limits: Vec<RateLimitConfig>,
    },
    Outbound {
        protocol: Protocol,
        service: String,
        /// New policies make a new stack (fresh limits, budgets and
        /// checks); open connections drain onto it.
        policies: Box<OutboundPolicies>,
    },
}

impl Spec {
    pub fn inbound(config: &InboundConfig) -> Self {
        Spec::Inbound {
            protocol: config.protocol,
            service: config.service.clone(),
            target: config.service_address,
            permissions: config.permissions.clone(),
            rate_limits: config.rate_limits.clone(),
        }
    }

    pub fn outbound(config: &OutboundConfig) -> Self {
        Spec::Outbound {
            protocol: config.protocol,
            service: config.service.clone(),
            policies: Box::new(config.policies.clone()),
        }
    }
}

impl Route {
    /// Fails only if rustls rejects our TLS settings, which the ring
    /// provider always supports.
    pub fn inbound(
        config: &InboundConfig,
        identity: &Arc<Identity>,
    ) -> Result<Self, rustls::Error> {
        Ok(if config.protocol.is_http() {
            Route::InboundHttp(Arc::new(InboundHttp::new(config, identity)?))
        } else {
            Route::InboundTcp(Arc::new(InboundTcp::new(config, identity)?))
        })
    }

    pub fn outbound(
        config: &OutboundConfig,
        identity: &Arc<Identity>,
    ) -> Result<Self, rustls::Error> {
        Ok(if config.protocol.is_http() {
            Route::OutboundHttp(Arc::new(OutboundHttp::new(config, identity)?))
        } else {
            Route::OutboundTcp(Arc::new(OutboundTcp::new(config, identity)?))
        })
    }

    /// Swaps an outbound's endpoint set; inbounds have none.
    pub fn update_endpoints(&self, endpoints: &[EndpointConfig]) {
        match self {
            Route::OutboundTcp(o) => o.update(endpoints),
            Route::OutboundHttp(o) => o.update(endpoints),
            Route::InboundTcp(_) | Route::InboundHttp(_) => {}
        }
    }

    /// Serves one connection until it ends, in the caller's task (the
    /// redirect listener picks the route after reading the connection).
    pub async fn serve(self, stream: TcpStream, drain: Watch) {
        match self {
            Route::InboundHttp(r) => inbound::serve_http(r, stream, drain).await,
            Route::OutboundHttp(r) => outbound::serve_http(r, stream, drain).await,
            // An opaque TCP connection cannot be closed gracefully, so it
            // only holds the watch: shutdown waits for it up to its deadline.
            Route::InboundTcp(r) => {
                inbound::serve_tcp(r, stream).await;
                drop(drain);
            }
            Route::OutboundTcp(r) => {
                outbound::serve_tcp(r, stream).await;
                drop(drain);
            }
        }
    }

    /// Serves one accepted connection in its own task until it ends.
    ///
    /// One task per kind rather than one future matching on the kind: a
    /// task is as large as its future, and a match would make every
    /// connection as large as the largest kind (a TLS handshake), which
    /// thousands of idle outbound connections would pay for.
    pub fn spawn(&self, stream: TcpStream, drain: Watch) {
        match self {
            Route::InboundHttp(r) => {
                tokio::spawn(inbound::serve_http(r.clone(), stream, drain));
            }
            Route::OutboundHttp(r) => {
                tokio::spawn(outbound::serve_http(r.clone(), stream, drain));
            }
            Route::InboundTcp(r) => {
                let r = r.clone();
                tokio::spawn(async move {
                    inbound::serve_tcp(r, stream).await;
                    drop(drain);
                });
            }
            Route::OutboundTcp(r) => {
                let r = r.clone();
                tokio::spawn(async move {
                    outbound::serve_tcp(r, stream).await;
                    drop(drain);
                });
            }
        }
    }
}
