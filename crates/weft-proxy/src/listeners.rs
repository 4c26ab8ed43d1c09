//! The one place that changes what the proxy listens on.
//!
//! Each new config is diffed against the running listeners, keyed by bind
//! address: new addresses are bound before anything running is touched (a
//! failed bind leaves everything as it was); an unchanged listener keeps
//! running and an outbound only gets its endpoint set swapped; a listener
//! whose stack changed keeps its socket and gets the new stack; a removed
//! listener stops accepting while its open connections finish.
//!
//! The mTLS mode is not part of a listener's stack: every listener reads
//! it from the shared identity per connection, so a mode change applies to
//! new connections and leaves open ones alone.

mod accept;
pub mod route;

use std::{
    collections::{HashMap, HashSet},
    io,
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use tokio::{net::TcpListener, task::JoinSet};
use tracing::{debug, info};

pub use self::accept::{Running, spawn};
use self::route::{Route, Spec};
use crate::{
    config::{Config, EndpointConfig, InboundConfig, OutboundConfig},
    tls::Identity,
};

/// Why a config could not be applied; the running listeners are untouched.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The running listeners, owned by the control-plane side. The request
/// path never sees this struct: it reads endpoint sets through each
/// route's balancer.
#[derive(Debug)]
pub struct Listeners {
    identity: Arc<Identity>,
    running: HashMap<SocketAddr, Running>,
    /// Listeners that were removed or replaced and whose connections are
    /// still finishing.
    draining: JoinSet<()>,
}

/// One listener a config asks for.
enum Desired<'a> {
    Inbound(&'a InboundConfig),
    Outbound(&'a OutboundConfig),
}

impl Desired<'_> {
    fn addr(&self) -> SocketAddr {
        match self {
            Desired::Inbound(c) => c.listen,
            Desired::Outbound(c) => c.listen,
        }
    }

    fn spec(&self) -> Spec {
        match self {
            Desired::Inbound(c) => Spec::inbound(c),
            Desired::Outbound(c) => Spec::outbound(c),
        }
    }

    fn route(&self, identity: &Arc<Identity>) -> Result<Route, rustls::Error> {
        match self {
            Desired::Inbound(c) => Route::inbound(c, identity),
            Desired::Outbound(c) => Route::outbound(c, identity),
        }
    }

    fn endpoints(&self) -> &[EndpointConfig] {
        match self {
            Desired::Inbound(_) => &[],
            Desired::Outbound(c) => &c.endpoints,
        }
    }
}

impl Listeners {
    /// No listeners yet; their stacks will share `identity`.
    pub fn new(identity: Arc<Identity>) -> Self {
        Self {
            identity,
            running: HashMap::new(),
            draining: JoinSet::new(),
        }
    }

    /// Makes the running listeners match `config`; on error nothing
    /// changed.
    pub async fn apply(&mut self, config: &Config) -> Result<(), ApplyError> {
        while self.draining.try_join_next().is_some() {}
        let desired: Vec<Desired<'_>> = config
            .inbounds
            .iter()
            .map(Desired::Inbound)
            .chain(config.outbounds.iter().map(Desired::Outbound))
            .collect();

        // Build every stack and bind every new address first: if one fails,
        // what was made so far is dropped here and the running config is
        // untouched.
        let mut routes = HashMap::new();
        for d in &desired {
            let unchanged = self
                .running
                .get(&d.addr())
                .is_some_and(|running| running.spec == d.spec());
            if !unchanged {
                routes.insert(d.addr(), d.route(&self.identity)?);
            }
        }
        let mut fresh = HashMap::new();
        for d in &desired {
            let addr = d.addr();
            if !self.running.contains_key(&addr) {
                let listener = bind(addr).await?;
                fresh.insert(addr, listener);
            }
        }

        let wanted: HashSet<SocketAddr> = desired.iter().map(Desired::addr).collect();
        let removed: Vec<SocketAddr> = self
            .running
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in removed {
            if let Some(running) = self.running.remove(&addr) {
                info!(%addr, "listener removed");
                let (_socket, drained) = running.stop().await;
                self.draining.spawn(drained);
            }
        }

        for d in &desired {
            let addr = d.addr();
            let spec = d.spec();
            let listener = match (fresh.remove(&addr), self.running.remove(&addr)) {
                (Some(listener), _) => {
                    info!(%addr, ?spec, "listener added");
                    listener
                }
                (None, Some(running)) if running.spec == spec => {
                    running.route.update_endpoints(d.endpoints());
                    self.running.insert(addr, running);
                    continue;
                }
                (None, Some(running)) => {
                    info!(%addr, ?spec, "listener changed");
                    let (socket, drained) = running.stop().await;
                    self.draining.spawn(drained);
                    match socket {
                        Some(socket) => socket,
                        // Only if the accept task panicked: the socket went
                        // with it, so bind again.
                        None => bind(addr).await?,
                    }
                }
                // Every wanted address is either fresh or running.
                (None, None) => bind(addr).await?,
            };
            let route = match routes.remove(&addr) {
                Some(route) => route,
                // Built above for every listener that is not unchanged.
                None => d.route(&self.identity)?,
            };
            self.running.insert(addr, spawn(listener, spec, route));
        }
        debug!(
            listeners = self.running.len(),
            "config applied to listeners"
        );
        Ok(())
    }

    /// Stops accepting everywhere and waits, up to `timeout`, for open
    /// connections to finish. Returns whether they all did.
    pub async fn shutdown(mut self, timeout: Duration) -> bool {
        for (_, running) in self.running.drain() {
            let (_socket, drained) = running.stop().await;
            self.draining.spawn(drained);
        }
        let all_done = async { while self.draining.join_next().await.is_some() {} };
        tokio::time::timeout(timeout, all_done).await.is_ok()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ApplyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ApplyError::Bind { addr, source })
}

#[cfg(test)]
mod tests;
