//! The shape of `results.json`: everything one run measured, in absolute
//! units. The report derives ratios and target verdicts from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::LatencySummary;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    pub settings: Settings,
    pub topologies: Vec<TopologyResult>,
    #[serde(default)]
    pub cp_scale: Vec<CpScale>,
}

/// Where and when the run happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_gib: f64,
    pub date: String,
    pub weft_commit: String,
    /// Tool name → version line (oha, haproxy, nginx, rustc).
    pub versions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// `quick` or `full`.
    pub mode: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// How processes were pinned to CPUs.
    pub pinning: String,
    pub hold_connections: usize,
    pub endpoints: usize,
    /// How the Weft proxies were started (`weft-proxy` or `weft proxy`).
    #[serde(default)]
    pub proxy_executable: String,
    /// Paired rounds of the workloads the latency and CPU targets are read
    /// from, after the main pass (0: the targets read the main pass).
    #[serde(default)]
    pub rounds: usize,
    /// How long each round measured each workload (after a warm-up of a
    /// quarter of that).
    #[serde(default)]
    pub round_duration_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopologyResult {
    pub id: String,
    pub label: String,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// The paired rounds of the workloads the targets are read from, in
    /// round order; `runs` holds the main pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<Run>,
}

impl TopologyResult {
    pub fn run(&self, workload: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.workload == workload)
    }

    /// The runs of `workload` the round-based targets read, each `None`
    /// where it measured nothing: the paired rounds when the suite ran
    /// any, else the main pass. A round that failed leaves a gap, so
    /// callers pairing two topologies' rounds pair by index.
    pub fn rounds(&self, workload: &str) -> Vec<Option<&Run>> {
        let usable = |r: &&Run| r.skipped.is_none() && r.ok > 0;
        let paired: Vec<&Run> = self
            .repeats
            .iter()
            .filter(|r| r.workload == workload)
            .collect();
        if paired.is_empty() {
            return vec![self.run(workload).filter(usable)];
        }
        paired.into_iter().map(|r| Some(r).filter(usable)).collect()
    }
}

/// One workload on one topology.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    pub workload: String,
    /// `oha` or `weft-bench`.
    pub tool: String,
    /// e.g. `open 1000/s` or `closed 64`.
    pub load: String,
    pub open_loop: bool,
    pub ok: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub duration_s: f64,
    /// Achieved rate in `unit`.
    pub rate: f64,
    /// `req/s`, `conn/s` or `MB/s`.
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    /// CPU seconds the proxies (all processes of the pair) used during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_cpu_s: Option<f64>,
    pub server_cpu_s: f64,
    /// `rate * duration / proxy_cpu_s`: work per proxy CPU-second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_proxy_cpu_s: Option<f64>,
    /// Highest RSS per proxy role sampled during the run.
    #[serde(default)]
    pub proxy_rss_peak: Vec<ProcRss>,
    /// CPU seconds used during the run by processes that are not part of
    /// the benchmark (a shared machine), steal time included.
    #[serde(default)]
    pub other_cpu_s: f64,
    /// Attempts made (a disturbed run is repeated; the least disturbed is kept).
    #[serde(default)]
    pub attempts: usize,
    /// Set when the run could not happen (the topology lacks this protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Resident memory of one proxy (`caller` or `server`), all its processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcRss {
    pub role: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    pub idle: Vec<ProcRss>,
    #[serde(default)]
    pub load_peak: Vec<ProcRss>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<HeldConnections>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<ManyEndpoints>,
}

/// RSS while a client holds many open keep-alive connections to the caller.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeldConnections {
    pub wanted: usize,
    pub held: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub rss: Vec<ProcRss>,
    /// Open sockets per proxy while the connections were held.
    #[serde(default)]
    pub sockets: Vec<(String, usize)>,
}

/// RSS of the caller proxy with many endpoints in its config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManyEndpoints {
    pub simulated: usize,
    /// Endpoints the caller's `/config` lists for the HTTP outbound.
    pub in_config: usize,
    pub rss_idle: Vec<ProcRss>,
    /// A short open-loop HTTP/1.1 run through all those endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_load: Option<Run>,
}

/// `weft-bench cp-scale` output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpScale {
    pub dataplanes: usize,
    pub connections: usize,
    pub registered: usize,
    pub failed_streams: usize,
    pub registration_s: f64,
    pub registration_cp_cpu_s: f64,
    pub cp_rss_before_bytes: u64,
    pub cp_rss_after_bytes: u64,
    pub rss_per_dataplane_bytes: f64,
    pub add: Propagation,
    pub remove: Propagation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_in_status: Option<usize>,
    /// The bounds of the waits (registration, each change).
    #[serde(default)]
    pub register_timeout_s: f64,
    #[serde(default)]
    pub change_timeout_s: f64,
}

/// How fast one change reached every simulated proxy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Propagation {
    pub expected: usize,
    pub received: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cp_cpu_s: f64,
}
