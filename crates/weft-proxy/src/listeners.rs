//! The one place that changes what the proxy listens on.
//!
//! Each new config is diffed against the running listeners, keyed by bind
//! address: new stacks are built and new addresses bound before anything
//! running is touched (a failure leaves everything as it was); an unchanged
//! listener keeps running and an outbound only gets its endpoint set
//! swapped; a listener whose stack changed keeps its socket and gets the new
//! stack; a removed listener stops accepting while its open connections
//! finish. A running socket is never bound again, not even when its accept
//! task died: the socket outlives the task, and gets a new one.
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
use tracing::{debug, info, warn};

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

/// What becomes of one listener a config asks for, decided before anything
/// running changes.
enum Plan {
    /// Same address and stack: only an outbound's endpoints are swapped.
    Keep,
    /// Same address, new stack: it takes over the running socket.
    Replace(Route),
    /// A new address, bound in the first phase.
    Add(Route),
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

        // Everything that can fail happens here, before anything running is
        // touched: if a stack cannot be built or an address bound, what was
        // made so far is dropped and the running config is as it was.
        let mut plans = Vec::with_capacity(desired.len());
        for d in &desired {
            let plan = match self.running.get(&d.addr()) {
                Some(running) if running.spec == d.spec() => Plan::Keep,
                Some(_) => Plan::Replace(d.route(&self.identity)?),
                None => Plan::Add(d.route(&self.identity)?),
            };
            plans.push(plan);
        }
        let mut fresh = HashMap::new();
        for d in &desired {
            let addr = d.addr();
            if !self.running.contains_key(&addr) {
                fresh.insert(addr, bind(addr).await?);
            }
        }

        // From here on nothing fails: running sockets are handed over, never
        // bound again.
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
                self.stop(running).await;
            }
        }

        for (d, plan) in desired.iter().zip(plans) {
            let addr = d.addr();
            let spec = d.spec();
            // The `continue`s below cannot happen: every `Add` was bound
            // above, and `Keep` and `Replace` were planned from `running`,
            // which nothing else changes meanwhile.
            let (socket, route) = match (plan, fresh.remove(&addr)) {
                (Plan::Add(route), Some(listener)) => {
                    info!(%addr, ?spec, "listener added");
                    (Arc::new(listener), route)
                }
                (Plan::Add(_), None) => continue,
                (Plan::Keep, _) => {
                    let Some(running) = self.running.remove(&addr) else {
                        continue;
                    };
                    running.route.update_endpoints(d.endpoints());
                    if !running.is_dead() {
                        self.running.insert(addr, running);
                        continue;
                    }
                    warn!(%addr, "the listener's accept task had died; restarting it");
                    let route = running.route.clone();
                    (self.stop(running).await, route)
                }
                (Plan::Replace(route), _) => {
                    let Some(running) = self.running.remove(&addr) else {
                        continue;
                    };
                    info!(%addr, ?spec, "listener changed");
                    (self.stop(running).await, route)
                }
            };
            self.running.insert(addr, spawn(socket, spec, route));
        }
        debug!(
            listeners = self.running.len(),
            "config applied to listeners"
        );
        Ok(())
    }

    /// Stops a listener and returns its socket, still bound; its open
    /// connections finish in the background.
    async fn stop(&mut self, running: Running) -> Arc<TcpListener> {
        let (socket, drained) = running.stop().await;
        self.draining.spawn(drained);
        socket
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
