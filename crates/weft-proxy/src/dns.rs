//! The mesh DNS server: on 127.0.0.1, UDP and TCP, where `weft install
//! transparent-proxy --redirect-dns` sends the applications' queries. It
//! answers `<service>.<suffix>` itself (`names`) and forwards every other
//! query to the host's resolvers (`upstream`), read once when it starts.

mod names;
mod upstream;

use std::{
    io,
    net::{Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::{
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinSet,
};
use tracing::{debug, info, warn};

pub use self::names::Names;
use self::names::Reply;
use crate::redirect::DnsStats;

/// A TCP client that sends no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP query accepted (EDNS clients stay well under it).
const MAX_UDP_QUERY: usize = 4096;

/// The sockets of a DNS server that is not answering yet: UDP and TCP on
/// the given address, and on `[::1]` with the same port where the host has
/// IPv6 (ip6tables redirects DNS there).
#[derive(Debug)]
pub struct Bound {
    sockets: Vec<(UdpSocket, TcpListener)>,
    addr: SocketAddr,
}

/// A running DNS server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    names: Arc<ArcSwap<Names>>,
    tasks: JoinSet<()>,
}

/// What every query task shares.
#[derive(Debug)]
struct Shared {
    names: Arc<ArcSwap<Names>>,
    resolvers: Vec<SocketAddr>,
    stats: Arc<DnsStats>,
}

impl Bound {
    /// Binds UDP and TCP on `addr` (and best effort on IPv6 loopback).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let mut sockets = vec![(UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?)];
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()));
        match (UdpSocket::bind(v6).await, TcpListener::bind(v6).await) {
            (Ok(udp), Ok(tcp)) => sockets.push((udp, tcp)),
            (Err(e), _) | (_, Err(e)) => {
                warn!(addr = %v6, error = %e, "no IPv6 DNS listener; IPv6 DNS redirected here goes unanswered");
            }
        }
        Ok(Self { sockets, addr })
    }

    /// Starts answering with `names`, forwarding to the host's resolvers,
    /// counting answers in `stats`.
    pub fn start(self, names: Names, stats: Arc<DnsStats>) -> Server {
        self.start_with(names, upstream::host_resolvers(), stats)
    }

    /// [`Bound::start`] with the resolvers given.
    fn start_with(self, names: Names, resolvers: Vec<SocketAddr>, stats: Arc<DnsStats>) -> Server {
        info!(addr = %self.addr, ?resolvers, "mesh DNS server listening");
        let names = Arc::new(ArcSwap::from_pointee(names));
        let shared = Arc::new(Shared {
            names: names.clone(),
            resolvers,
            stats,
        });
        let mut tasks = JoinSet::new();
        for (udp, tcp) in self.sockets {
            tasks.spawn(serve_udp(Arc::new(udp), shared.clone()));
            tasks.spawn(serve_tcp(tcp, shared.clone()));
        }
        Server {
            addr: self.addr,
            names,
            tasks,
        }
    }
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// New names for the next queries.
    pub fn update(&self, names: Names) {
        self.names.store(Arc::new(names));
    }

    /// Stops answering; queries being forwarded are dropped (clients retry).
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// How a query came, and so how it is forwarded.
#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

impl Shared {
    /// The answer to one query: ours, or the resolvers'. `None` when there
    /// is nothing to send (garbage, or no resolver answered; the client
    /// retries or gives up on its own).
    async fn answer(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let forwarded = match self.names.load().reply(query) {
            Reply::Local(bytes) => {
                DnsStats::bump(&self.stats.local);
                return Some(bytes);
            }
            Reply::Drop => return None,
            Reply::Forward => match transport {
                Transport::Udp => upstream::forward_udp(&self.resolvers, query).await,
                Transport::Tcp => upstream::forward_tcp(&self.resolvers, query).await,
            },
        };
        match forwarded {
            Ok(bytes) => {
                DnsStats::bump(&self.stats.forwarded);
                Some(bytes)
            }
            Err(e) => {
                DnsStats::bump(&self.stats.failed);
                warn!(error = %e, "cannot forward a DNS query");
                None
            }
        }
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_UDP_QUERY];
    let mut answering = JoinSet::new();
    loop {
        while answering.try_join_next().is_some() {}
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                debug!(error = %e, "DNS receive failed");
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let (socket, shared) = (socket.clone(), shared.clone());
        answering.spawn(async move {
            let Some(reply) = shared.answer(&query, Transport::Udp).await else {
                return;
            };
            if let Err(e) = socket.send_to(&reply, client).await {
                debug!(%client, error = %e, "cannot send a DNS answer");
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut clients = JoinSet::new();
    loop {
        while clients.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                clients.spawn(serve_tcp_client(stream, shared.clone()));
            }
            Err(e) => {
                debug!(error = %e, "DNS accept failed");
                tokio::time::sleep(crate::listeners::ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Answers the queries of one TCP client in order until it closes.
async fn serve_tcp_client(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let query = match tokio::time::timeout(TCP_IDLE_TIMEOUT, upstream::read_framed(&mut stream))
            .await
        {
            Ok(Ok(Some(query))) => query,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => return debug!(error = %e, "DNS client connection failed"),
        };
        let Some(reply) = shared.answer(&query, Transport::Tcp).await else {
            return;
        };
        if upstream::write_framed(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
