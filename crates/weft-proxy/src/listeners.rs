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
//! One move needs the old socket closed first: a port going from one
//! address to another that overlaps it (`10.0.0.5:P` to `0.0.0.0:P`) cannot
//! be bound while the listener being removed holds it. That listener is
//! stopped just before the new bind, as the last step that can fail, and
//! bound back if the new bind fails all the same.
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
use tracing::{debug, error, info, warn};

pub use self::accept::ACCEPT_ERROR_PAUSE;
pub use self::accept::{Running, spawn};
use self::route::{Route, Spec};
use crate::{
    config::{Config, EndpointConfig, InboundConfig, OutboundConfig},
    redirect::Redirect,
    tls::Identity,
};

/// Why a config could not be applied; the running listeners are as they
/// were (see [`Listeners::apply`] for the one exception).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Often transient (a port another process holds for a while): the
    /// same config may apply later.
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl ApplyError {
    fn is_addr_in_use(&self) -> bool {
        matches!(self, ApplyError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse)
    }
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
    /// The transparent-proxy listeners, applied with the others.
    redirect: Redirect,
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
            redirect: Redirect::new(identity.clone()),
            identity,
            running: HashMap::new(),
            draining: JoinSet::new(),
        }
    }

    /// Makes the running listeners match `config`; on error nothing
    /// changed, except in one rare case that is logged: a listener stopped
    /// to free its port for a moved one, when the move failed and its own
    /// address was taken before it could be bound back.
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
        let wanted: HashSet<SocketAddr> = desired.iter().map(Desired::addr).collect();
        let mut fresh = HashMap::new();
        let mut blocked = Vec::new();
        for d in &desired {
            let addr = d.addr();
            if self.running.contains_key(&addr) {
                continue;
            }
            match bind(addr).await {
                Ok(listener) => {
                    fresh.insert(addr, listener);
                }
                Err(e) if e.is_addr_in_use() && !self.holders(addr, &wanted).is_empty() => {
                    blocked.push(addr);
                }
                Err(e) => return Err(e),
            }
        }
        let redirect = self.redirect.prepare(config).await?;
        // Last, since it stops listeners (and binds them back on failure).
        for addr in blocked {
            let listener = self.take_over(addr, &wanted).await?;
            fresh.insert(addr, listener);
        }

        // From here on nothing fails: running sockets are handed over, never
        // bound again.
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
        self.redirect.commit(redirect).await;
        debug!(
            listeners = self.running.len(),
            "config applied to listeners"
        );
        Ok(())
    }

    /// Running listeners that this config removes and whose sockets clash
    /// with `addr`.
    fn holders(&self, addr: SocketAddr, wanted: &HashSet<SocketAddr>) -> Vec<SocketAddr> {
        self.running
            .keys()
            .filter(|&&held| !wanted.contains(&held) && clash(held, addr))
            .copied()
            .collect()
    }

    /// Binds `addr` after stopping the removed listeners that hold its port.
    /// If the bind fails anyway (the port is also held elsewhere), they are
    /// bound back with their stacks, so the error leaves things as they were
    /// unless one of their addresses was taken in between.
    async fn take_over(
        &mut self,
        addr: SocketAddr,
        wanted: &HashSet<SocketAddr>,
    ) -> Result<TcpListener, ApplyError> {
        let mut stopped = Vec::new();
        for held in self.holders(addr, wanted) {
            if let Some(running) = self.running.remove(&held) {
                info!(%held, %addr, "listener removed first: its port moves to the new address");
                let (spec, route) = (running.spec.clone(), running.route.clone());
                // The last reference: dropping it frees the port.
                drop(self.stop(running).await);
                stopped.push((held, spec, route));
            }
        }
        let error = match bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => e,
        };
        for (held, spec, route) in stopped {
            match bind(held).await {
                Ok(listener) => {
                    self.running.insert(held, spawn(listener, spec, route));
                }
                Err(e) => error!(
                    %held,
                    error = %e,
                    "cannot bind a listener back after its port could not move; it stays closed until a config applies"
                ),
            }
        }
        Err(error)
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
        let mut redirected = self.redirect.shutdown().await;
        self.draining
            .spawn(async move { while redirected.join_next().await.is_some() {} });
        for (_, running) in self.running.drain() {
            let (_socket, drained) = running.stop().await;
            self.draining.spawn(drained);
        }
        let all_done = async { while self.draining.join_next().await.is_some() {} };
        tokio::time::timeout(timeout, all_done).await.is_ok()
    }
}

/// Whether two listening sockets cannot coexist: the same port, and the
/// same address or a wildcard on either side.
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ApplyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ApplyError::Bind { addr, source })
}

#[cfg(test)]
mod tests;
