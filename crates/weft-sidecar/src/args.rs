//! The proxy's command-line arguments, shared by `weft proxy` and the
//! `weft-proxy` executable.

use std::{path::PathBuf, time::Duration};

/// Where proxies find the control plane's data-plane stream by default.
pub const DEFAULT_CP_DP_URL: &str = "https://127.0.0.1:5678";

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The Dataplane resource this proxy serves (YAML or JSON).
    #[arg(long)]
    pub dataplane_file: PathBuf,
    /// The control plane's data-plane address.
    #[arg(long = "cp", env = "WEFT_CP_DP", default_value = DEFAULT_CP_DP_URL)]
    pub cp: String,
    /// On stop: how long to keep serving after deregistering, so callers move away first.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub drain_time: Duration,
    /// File holding this proxy's dataplane token (`weft token dataplane`).
    #[arg(long, env = "WEFT_DATAPLANE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate an https control plane is verified against
    /// [default: the file the control plane writes, e.g. ~/.config/weft/cp-ca.pem, if it exists].
    #[arg(long, env = "WEFT_CP_CA_FILE")]
    pub cp_ca_file: Option<PathBuf>,
    /// Allow an `http://` control plane: unverified and unencrypted (tests of other concerns only).
    #[arg(long)]
    pub insecure_plaintext_cp: bool,
    /// How often the proxy sends its traffic counters to the control plane (`weft stat`).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub stats_interval: Duration,
    /// Threads that carry traffic [default: the CPUs this process may use].
    /// With one, the proxy runs on a single thread: no hand-offs between
    /// threads, the lowest latency and CPU per request.
    #[arg(long, env = "WEFT_PROXY_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

impl ProxyArgs {
    /// Runtime worker threads: `--workers`, else one per CPU this process
    /// may use (affinity and cgroup quota included).
    pub fn workers(&self) -> usize {
        match self.workers {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}
