//! The topologies a run compares. Each offers the client up to four lanes
//! (HTTP/1.1, HTTP/2, gRPC, opaque TCP) that end at the same backend.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    backend::Backend,
    haproxy, nginx,
    process::{Proc, local},
    weft::{self, Security, WeftPair},
    weftcli::Capabilities,
};

/// Every topology, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Direct,
    Weft,
    WeftMtls,
    Haproxy,
    HaproxyTls,
    Nginx,
}

impl Topology {
    pub const ALL: [Topology; 6] = [
        Topology::Direct,
        Topology::Weft,
        Topology::WeftMtls,
        Topology::Haproxy,
        Topology::HaproxyTls,
        Topology::Nginx,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Topology::Direct => "direct",
            Topology::Weft => "weft",
            Topology::WeftMtls => "weft-mtls",
            Topology::Haproxy => "haproxy",
            Topology::HaproxyTls => "haproxy-tls",
            Topology::Nginx => "nginx",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Topology::Direct => "direct (client → server)",
            Topology::Weft => "Weft pair, plaintext",
            Topology::WeftMtls => "Weft pair, mTLS",
            Topology::Haproxy => "HAProxy pair, plaintext",
            Topology::HaproxyTls => "HAProxy pair, mutual TLS between the pair",
            Topology::Nginx => "nginx pair, plaintext",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// Why it cannot run on this machine or with this `weft`, if it cannot.
    pub fn unavailable(self, ctx: &Ctx) -> Option<String> {
        match self {
            Topology::WeftMtls => weft::unavailable(Security::Mtls, &ctx.weft_caps),
            Topology::Weft => weft::unavailable(Security::Plaintext, &ctx.weft_caps),
            Topology::Haproxy | Topology::HaproxyTls => haproxy::unavailable(),
            Topology::Nginx => nginx::unavailable(),
            Topology::Direct => None,
        }
    }
}

/// Where a run keeps things, which binaries it uses and how it pins.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The run's output directory.
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub weft: PathBuf,
    /// What the Weft proxies run as.
    pub proxy: super::ProxyExe,
    pub oha: PathBuf,
    /// This binary (`weft-bench`).
    pub me: PathBuf,
    /// CPUs of the backend, proxies and control plane (`taskset -c`).
    pub proxy_cpus: Option<String>,
    /// CPUs of the load clients.
    pub client_cpus: Option<String>,
    /// What the `weft` under test supports.
    pub weft_caps: Capabilities,
}

/// The client's way in, per lane; `None` where the topology cannot carry it.
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    pub http: Option<SocketAddr>,
    pub h2: Option<SocketAddr>,
    pub grpc: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

/// A started topology; its processes die with it.
#[derive(Debug)]
pub struct Running {
    pub lanes: Lanes,
    /// (`caller` or `server`, process): what proxy CPU and RSS count.
    pub proxies: Vec<(String, Proc)>,
    /// Other processes (Weft's control plane).
    pub others: Vec<Proc>,
    pub weft: Option<WeftPair>,
}

impl Running {
    /// Stops the topology: the proxies first, each asked to stop and given
    /// a few seconds to drain, then the rest (killed on drop).
    pub async fn stop(mut self) {
        for (_, p) in &mut self.proxies {
            p.ask_to_stop();
        }
        for (_, p) in &mut self.proxies {
            p.wait_or_kill(PROXY_STOP_TIMEOUT).await;
        }
    }
}

/// How long a stopping proxy may drain (Weft's default drain is 1 s).
const PROXY_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn start(topology: Topology, ctx: &Ctx, backend: &Backend) -> anyhow::Result<Running> {
    match topology {
        Topology::Direct => Ok(Running {
            lanes: Lanes {
                http: Some(local(backend.http)),
                h2: Some(local(backend.http)),
                grpc: Some(local(backend.grpc)),
                tcp: Some(local(backend.tcp)),
            },
            proxies: Vec::new(),
            others: Vec::new(),
            weft: None,
        }),
        Topology::Weft => weft::start(ctx, backend, Security::Plaintext).await,
        Topology::WeftMtls => weft::start(ctx, backend, Security::Mtls).await,
        Topology::Haproxy => haproxy::start(ctx, backend, false).await,
        Topology::HaproxyTls => haproxy::start(ctx, backend, true).await,
        Topology::Nginx => nginx::start(ctx, backend).await,
    }
}
