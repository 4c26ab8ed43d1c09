//! Transparent proxying: the listeners that receive what the host's
//! iptables rules redirect (`weft install transparent-proxy`), and the
//! mesh DNS server.
//!
//! * The **outbound** listener (127.0.0.1 and ::1, `redirectPortOutbound`) gets the
//!   applications' connections to anywhere; each is sent to the mesh
//!   service its original destination belongs to, or passed through.
//! * The **inbound** listener (every address, `redirectPortInbound`) gets
//!   connections from the network to any port; each goes through the
//!   inbound stack of the port it was meant for.
//! * The **DNS** server (127.0.0.1 and ::1, `redirectPortDns`) answers
//!   `<service>.<suffix>` with virtual IPs and forwards everything else.
//!
//! Like the other listeners, a new config is applied in two steps: what can
//! fail (binding a new port, building stacks) in [`Redirect::prepare`],
//! before anything running changes; the swap in [`Redirect::commit`].
//! Each listener is one socket per address family the host has.

mod bind;
mod detect;
mod original_dst;
mod serve;
mod stats;
mod table;

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use arc_swap::ArcSwap;
use tokio::{net::TcpListener, task::JoinHandle, task::JoinSet};
use tracing::{info, warn};
use weft_api::dataplane::transparent::{INBOUND_LISTEN_IP, OUTBOUND_LISTEN_IP};

pub use self::stats::{DnsStats, RedirectStats};
use self::table::Table;
use crate::{
    config::Config,
    dns,
    drain::{self, Signal},
    listeners::{ACCEPT_ERROR_PAUSE, ApplyError},
    tcp,
    tls::Identity,
};

/// The redirect listeners and DNS server of the running config.
#[derive(Debug)]
pub struct Redirect {
    identity: Arc<Identity>,
    table: Arc<ArcSwap<Table>>,
    /// One socket per address family the host has, all on one port.
    inbound: Vec<Running>,
    outbound: Vec<Running>,
    dns: Option<dns::Server>,
    /// Drains the connections of the running table's stacks (see
    /// `Table::drain`).
    generation: Option<Signal>,
    draining: JoinSet<()>,
}

/// The IPv6 twins of the IPv4 listen addresses: what ip6tables redirects to.
const INBOUND_LISTEN_IP_V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
const OUTBOUND_LISTEN_IP_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Which way a listener's connections go.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    signal: Signal,
    accept: JoinHandle<()>,
}

/// A config's redirect state, made but not yet running.
#[derive(Debug)]
pub struct Prepared {
    table: Option<Table>,
    inbound: Option<Vec<TcpListener>>,
    outbound: Option<Vec<TcpListener>>,
    dns: Option<dns::Bound>,
    dns_names: Option<dns::Names>,
}

impl Redirect {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self {
            identity,
            table: Arc::default(),
            inbound: Vec::new(),
            outbound: Vec::new(),
            dns: None,
            generation: None,
            draining: JoinSet::new(),
        }
    }

    /// Builds `config`'s table and binds the ports it adds or moves. An
    /// error leaves everything running as it was.
    pub async fn prepare(&self, config: &Config) -> Result<Prepared, ApplyError> {
        let Some(transparent) = &config.transparent else {
            return Ok(Prepared {
                table: None,
                inbound: None,
                outbound: None,
                dns: None,
                dns_names: None,
            });
        };
        let table = Table::build(config, transparent, &self.table.load(), &self.identity)?;
        let inbound = bind_if_new(
            transparent.inbound_port,
            (INBOUND_LISTEN_IP, INBOUND_LISTEN_IP_V6),
            &self.inbound,
        )?;
        let outbound = bind_if_new(
            transparent.outbound_port,
            (OUTBOUND_LISTEN_IP, OUTBOUND_LISTEN_IP_V6),
            &self.outbound,
        )?;
        let dns = match transparent.dns_port {
            Some(port) => {
                let addr = SocketAddr::new(OUTBOUND_LISTEN_IP, port);
                if self.dns.as_ref().is_some_and(|d| d.addr() == addr) {
                    None
                } else {
                    Some(
                        dns::Bound::bind(addr)
                            .await
                            .map_err(|source| ApplyError::Bind { addr, source })?,
                    )
                }
            }
            None => None,
        };
        Ok(Prepared {
            table: Some(table),
            inbound,
            outbound,
            dns,
            dns_names: transparent.dns_port.map(|_| dns::Names::new(transparent)),
        })
    }

    /// Runs what [`Redirect::prepare`] made; cannot fail.
    pub async fn commit(&mut self, prepared: Prepared) {
        while self.draining.try_join_next().is_some() {}
        let Some(mut table) = prepared.table else {
            self.stop_all().await;
            self.table.store(Arc::default());
            return;
        };
        // Connections keep the last generation's drain while every stack
        // carried over; a new or removed stack starts a new generation.
        let current = self.table.load().drain.clone();
        table.drain = match current {
            Some(watch) if !table.new_stacks => Some(watch),
            _ => {
                let (signal, watch) = drain::channel();
                if let Some(old) = self.generation.replace(signal) {
                    self.draining.spawn(old.drain());
                }
                Some(watch)
            }
        };
        table.apply_endpoints();
        self.table.store(Arc::new(table));
        for (listeners, direction) in [
            (prepared.inbound, Direction::Inbound),
            (prepared.outbound, Direction::Outbound),
        ] {
            let Some(listeners) = listeners else { continue };
            let running: Vec<Running> = listeners
                .into_iter()
                .map(|l| self.spawn(l, direction))
                .collect();
            let slot = match direction {
                Direction::Inbound => &mut self.inbound,
                Direction::Outbound => &mut self.outbound,
            };
            let old = std::mem::replace(slot, running);
            for old in old {
                self.stop(old).await;
            }
        }
        match (prepared.dns, prepared.dns_names) {
            (Some(bound), Some(names)) => {
                if let Some(old) = self.dns.take() {
                    old.stop().await;
                }
                self.dns = Some(bound.start(names, self.identity.redirect_stats().dns()));
            }
            (None, Some(names)) => {
                if let Some(dns) = &self.dns {
                    dns.update(names);
                }
            }
            (_, None) => {
                if let Some(old) = self.dns.take() {
                    old.stop().await;
                }
            }
        }
    }

    fn spawn(&self, listener: TcpListener, direction: Direction) -> Running {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        info!(%addr, ?direction, "redirect listener added");
        let (signal, watch) = drain::channel();
        let table = self.table.clone();
        let identity = self.identity.clone();
        let accept = tokio::spawn(async move {
            let mut stop = watch.clone();
            loop {
                let accepted = tokio::select! {
                    biased;
                    () = stop.signaled() => return,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => {
                        tcp::set_nodelay(&stream);
                        let table = table.load_full();
                        let watch = table.drain.clone().unwrap_or_else(|| watch.clone());
                        let identity = identity.clone();
                        tokio::spawn(async move {
                            let stats = identity.redirect_stats();
                            match direction {
                                Direction::Inbound => {
                                    serve::inbound(&table, stream, watch, stats).await;
                                }
                                Direction::Outbound => {
                                    serve::outbound(&table, stream, watch, stats).await;
                                }
                            }
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed on a redirect listener");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        });
        Running {
            addr,
            signal,
            accept,
        }
    }

    async fn stop(&mut self, running: Running) {
        let drained = running.signal.drain();
        let _ = running.accept.await;
        self.draining.spawn(drained);
    }

    /// Stops accepting and answering; open connections finish in the
    /// returned set.
    pub async fn shutdown(mut self) -> JoinSet<()> {
        self.stop_all().await;
        self.draining
    }

    /// Stops every listener and the DNS server, and drains the connections.
    async fn stop_all(&mut self) {
        if let Some(generation) = self.generation.take() {
            self.draining.spawn(generation.drain());
        }
        let all: Vec<Running> = self
            .inbound
            .drain(..)
            .chain(self.outbound.drain(..))
            .collect();
        for running in all {
            info!(addr = %running.addr, "redirect listener removed");
            self.stop(running).await;
        }
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
    }
}

/// The sockets for `port` (IPv4, and IPv6 where the host has it), unless
/// the running ones are already on it.
fn bind_if_new(
    port: u16,
    (v4, v6): (IpAddr, IpAddr),
    running: &[Running],
) -> Result<Option<Vec<TcpListener>>, ApplyError> {
    if running.first().is_some_and(|r| r.addr.port() == port) {
        return Ok(None);
    }
    bind::both(SocketAddr::new(v4, port), SocketAddr::new(v6, port)).map(Some)
}
