//! Rows of the report: each topology's numbers next to direct's and the
//! HAProxy pair's, as differences and ratios.

use serde::Serialize;

use crate::results::{ProcRss, Results, Run, TopologyResult};

pub const DIRECT: &str = "direct";
pub const HAPROXY: &str = "haproxy";

/// One open-loop run's latency against the baselines.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyRow {
    pub workload: String,
    pub topology: String,
    pub load: String,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Over direct, in microseconds.
    pub added_p50_us: Option<f64>,
    pub added_p99_us: Option<f64>,
    pub p50_vs_direct: Option<f64>,
    pub p99_vs_direct: Option<f64>,
    pub p999_vs_direct: Option<f64>,
    pub p50_vs_haproxy: Option<f64>,
    pub p99_vs_haproxy: Option<f64>,
    pub achieved_rate: f64,
    pub errors: u64,
    /// CPU used by processes outside the benchmark, as a share of one core.
    pub other_cpu_share: f64,
}

/// One closed-loop run's throughput against the baselines.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThroughputRow {
    pub workload: String,
    pub topology: String,
    pub load: String,
    pub rate: f64,
    pub unit: String,
    pub vs_direct: Option<f64>,
    pub vs_haproxy: Option<f64>,
    pub proxy_cpu_s: Option<f64>,
    /// Work (in `unit` × seconds) per proxy CPU-second.
    pub per_proxy_cpu_s: Option<f64>,
    pub per_proxy_cpu_s_vs_haproxy: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub errors: u64,
    pub other_cpu_share: f64,
}

/// One proxy's memory in each situation, in bytes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemoryRow {
    pub topology: String,
    pub role: String,
    pub idle: Option<u64>,
    pub load_peak: Option<u64>,
    /// (connections held, RSS, the proxy's open sockets).
    pub connections: Option<(usize, u64, usize)>,
    pub endpoints: Option<(usize, u64)>,
}

/// `a / b`, if both exist and `b` is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Other processes' CPU during a run, as a share of one core.
pub fn other_share(run: &Run) -> f64 {
    run.other_cpu_s / run.duration_s.max(1e-3)
}

/// The main pass's run of `workload` on `topology`, if it measured something.
pub fn find<'a>(results: &'a Results, topology: &str, workload: &str) -> Option<&'a Run> {
    results
        .topologies
        .iter()
        .find(|t| t.id == topology)
        .and_then(|t| t.run(workload))
        .filter(|r| r.skipped.is_none() && r.ok > 0)
}

/// Topologies that ran, in report order.
fn ran(results: &Results) -> impl Iterator<Item = &TopologyResult> {
    results.topologies.iter().filter(|t| t.available)
}

/// Workload ids in the order runs appear.
fn workload_ids(results: &Results, open_loop: bool) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in &results.topologies {
        for r in t.runs.iter().filter(|r| r.open_loop == open_loop) {
            if !ids.contains(&r.workload) {
                ids.push(r.workload.clone());
            }
        }
    }
    ids
}

pub fn latency(results: &Results) -> Vec<LatencyRow> {
    let mut rows = Vec::new();
    for w in workload_ids(results, true) {
        let lat = |t: &str| find(results, t, &w).and_then(|r| r.latency);
        let (direct, haproxy) = (lat(DIRECT), lat(HAPROXY));
        for t in ran(results) {
            let Some(run) = find(results, &t.id, &w) else {
                continue;
            };
            let Some(l) = run.latency else { continue };
            rows.push(LatencyRow {
                workload: w.clone(),
                topology: t.id.clone(),
                load: run.load.clone(),
                p50_us: l.p50_us,
                p99_us: l.p99_us,
                p999_us: l.p999_us,
                added_p50_us: direct.map(|d| l.p50_us - d.p50_us),
                added_p99_us: direct.map(|d| l.p99_us - d.p99_us),
                p50_vs_direct: ratio(Some(l.p50_us), direct.map(|d| d.p50_us)),
                p99_vs_direct: ratio(Some(l.p99_us), direct.map(|d| d.p99_us)),
                p999_vs_direct: ratio(Some(l.p999_us), direct.map(|d| d.p999_us)),
                p50_vs_haproxy: ratio(Some(l.p50_us), haproxy.map(|d| d.p50_us)),
                p99_vs_haproxy: ratio(Some(l.p99_us), haproxy.map(|d| d.p99_us)),
                achieved_rate: run.rate,
                errors: run.errors,
                other_cpu_share: other_share(run),
            });
        }
    }
    rows
}

pub fn throughput(results: &Results) -> Vec<ThroughputRow> {
    let mut rows = Vec::new();
    for w in workload_ids(results, false) {
        let direct = find(results, DIRECT, &w).map(|r| r.rate);
        let haproxy = find(results, HAPROXY, &w);
        for t in ran(results) {
            let Some(run) = find(results, &t.id, &w) else {
                continue;
            };
            rows.push(ThroughputRow {
                workload: w.clone(),
                topology: t.id.clone(),
                load: run.load.clone(),
                rate: run.rate,
                unit: run.unit.clone(),
                vs_direct: ratio(Some(run.rate), direct),
                vs_haproxy: ratio(Some(run.rate), haproxy.map(|h| h.rate)),
                proxy_cpu_s: run.proxy_cpu_s,
                per_proxy_cpu_s: run.per_proxy_cpu_s,
                per_proxy_cpu_s_vs_haproxy: ratio(
                    run.per_proxy_cpu_s,
                    haproxy.and_then(|h| h.per_proxy_cpu_s),
                ),
                p50_us: run.latency.map(|l| l.p50_us),
                p99_us: run.latency.map(|l| l.p99_us),
                errors: run.errors,
                other_cpu_share: other_share(run),
            });
        }
    }
    rows
}

fn bytes_of(list: &[ProcRss], role: &str) -> Option<u64> {
    list.iter().find(|r| r.role == role).map(|r| r.bytes)
}

pub fn memory(results: &Results) -> Vec<MemoryRow> {
    let mut rows = Vec::new();
    for t in ran(results) {
        let Some(m) = &t.memory else { continue };
        for role in ["caller", "server"] {
            rows.push(MemoryRow {
                topology: t.id.clone(),
                role: role.into(),
                idle: bytes_of(&m.idle, role),
                load_peak: bytes_of(&m.load_peak, role),
                connections: m.connections.as_ref().and_then(|c| {
                    let sockets = c
                        .sockets
                        .iter()
                        .find(|(r, _)| r == role)
                        .map_or(0, |(_, n)| *n);
                    Some((c.held, bytes_of(&c.rss, role)?, sockets))
                }),
                endpoints: m
                    .endpoints
                    .as_ref()
                    .and_then(|e| Some((e.in_config, bytes_of(&e.rss_idle, role)?))),
            });
        }
    }
    rows
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{results::*, stats::LatencySummary};

    pub fn run(
        workload: &str,
        open: bool,
        p50: f64,
        p99: f64,
        rate: f64,
        per_cpu: Option<f64>,
    ) -> Run {
        Run {
            workload: workload.into(),
            open_loop: open,
            ok: 100,
            rate,
            duration_s: 1.0,
            unit: "req/s".into(),
            latency: Some(LatencySummary {
                count: 100,
                p50_us: p50,
                p99_us: p99,
                p999_us: p99 * 2.0,
                ..Default::default()
            }),
            per_proxy_cpu_s: per_cpu,
            ..Default::default()
        }
    }

    pub fn topology(id: &str, runs: Vec<Run>) -> TopologyResult {
        TopologyResult {
            id: id.into(),
            label: id.into(),
            available: true,
            runs,
            ..Default::default()
        }
    }

    pub fn sample() -> Results {
        Results {
            topologies: vec![
                topology(
                    "direct",
                    vec![
                        run("http1-1k", true, 100.0, 200.0, 1000.0, None),
                        run("http1-max", false, 0.0, 0.0, 40_000.0, None),
                    ],
                ),
                topology(
                    "weft",
                    vec![
                        run("http1-1k", true, 180.0, 400.0, 1000.0, None),
                        run("http1-max", false, 0.0, 0.0, 10_000.0, Some(12_000.0)),
                    ],
                ),
                topology(
                    "haproxy",
                    vec![
                        run("http1-1k", true, 200.0, 500.0, 1000.0, None),
                        run("http1-max", false, 0.0, 0.0, 12_000.0, Some(10_000.0)),
                    ],
                ),
                topology(
                    "weft-mtls",
                    vec![run("http1-1k", true, 190.0, 420.0, 1000.0, None)],
                ),
                topology(
                    "haproxy-tls",
                    vec![run("http1-1k", true, 210.0, 520.0, 1000.0, None)],
                ),
                TopologyResult {
                    id: "nginx".into(),
                    available: false,
                    note: Some("not available yet".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn latency_rows_compare_to_direct_and_haproxy() {
        let rows = latency(&sample());
        assert_eq!(rows.len(), 5);
        let weft = rows.iter().find(|r| r.topology == "weft").unwrap();
        assert_eq!(weft.added_p50_us, Some(80.0));
        assert_eq!(weft.added_p99_us, Some(200.0));
        assert_eq!(weft.p50_vs_direct, Some(1.8));
        assert_eq!(weft.p99_vs_haproxy, Some(0.8));
    }

    #[test]
    fn throughput_rows_compare_per_cpu() {
        let rows = throughput(&sample());
        let weft = rows.iter().find(|r| r.topology == "weft").unwrap();
        assert_eq!(weft.vs_direct, Some(0.25));
        assert_eq!(weft.per_proxy_cpu_s_vs_haproxy, Some(1.2));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    }
}
