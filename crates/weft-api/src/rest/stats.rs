//! `GET /meshes/{mesh}/stats[?service=S]`: what `weft stat` prints, computed
//! by the control plane from the proxies' last two `StatsReport`s.

use serde::{Deserialize, Serialize};

/// Traffic of a mesh: per service (what its instances received) and per
/// edge (what callers sent to a service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshStats {
    pub mesh: String,
    /// Per destination service, from the inbound side.
    pub services: Vec<TrafficStats>,
    /// Per (source, destination), from the callers' outbound side.
    pub edges: Vec<TrafficStats>,
}

/// One service or edge. Rates, success and latency cover the last report
/// interval of each proxy; `requests` counts everything since the proxies
/// started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficStats {
    /// The calling service (edges only; empty when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub destination: String,
    /// Requests since the reporting proxies started.
    pub requests: u64,
    /// Requests per second over the last interval.
    pub rps: f64,
    /// Share of answers below 500 over the last interval (0–1; a client
    /// that went away first is no success); none without requests in it.
    pub success_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}
