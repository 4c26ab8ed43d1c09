//! `weft stat`'s numbers from the proxies' reports: for every edge a proxy
//! reported twice, the difference between its two reports over the time
//! between them gives requests per second, the share of successes and the
//! latency buckets of that interval; those are summed per service (the
//! inbound edges, as the destination's proxies saw them) and per edge (the
//! outbound edges, as the callers' proxies saw them). Percentiles are read
//! from the summed buckets, interpolating linearly inside a bucket as
//! Prometheus' `histogram_quantile` does.

use std::collections::BTreeMap;

use weft_api::{
    proto::{EdgeStats, StatsReport},
    rest::{MeshStats, TrafficStats},
};

use super::reports::Reported;

/// What one service or edge adds up to.
#[derive(Debug, Default, Clone)]
struct Sum {
    total: u64,
    rps: f64,
    requests: u64,
    successes: u64,
    /// Per bucket over the interval; empty until a report with buckets.
    buckets: Vec<u64>,
}

/// The mesh's services and edges, sorted by name.
pub fn mesh_stats(mesh: &str, reports: &[Reported]) -> MeshStats {
    let bounds = reports
        .iter()
        .map(|r| &r.latest.latency_bounds_seconds)
        .find(|b| !b.is_empty())
        .cloned()
        .unwrap_or_default();
    let mut services: BTreeMap<String, Sum> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for reported in reports {
        for edge in &reported.latest.edges {
            let sum = match edge.direction.as_str() {
                "inbound" => services
                    .entry(edge.destination_service.clone())
                    .or_default(),
                "outbound" => edges
                    .entry((
                        edge.source_service.clone(),
                        edge.destination_service.clone(),
                    ))
                    .or_default(),
                _ => continue,
            };
            add(
                sum,
                edge,
                reported.previous.as_ref(),
                &reported.latest,
                &bounds,
            );
        }
    }
    MeshStats {
        mesh: mesh.to_owned(),
        services: services
            .into_iter()
            .map(|(destination, sum)| row(None, destination, &sum, &bounds))
            .collect(),
        edges: edges
            .into_iter()
            .map(|((source, destination), sum)| row(Some(source), destination, &sum, &bounds))
            .collect(),
    }
}

/// Adds one proxy's view of an edge: its total, and its interval if the
/// proxy reported before (counters that went down mean a reset: no interval).
fn add(
    sum: &mut Sum,
    edge: &EdgeStats,
    previous: Option<&StatsReport>,
    latest: &StatsReport,
    bounds: &[f64],
) {
    sum.total += edge.requests;
    let Some(previous) = previous else { return };
    let seconds = latest.taken_at_ms.saturating_sub(previous.taken_at_ms) as f64 / 1000.0;
    if seconds <= 0.0 {
        return;
    }
    let before = previous.edges.iter().find(|e| {
        e.direction == edge.direction
            && e.source_service == edge.source_service
            && e.destination_service == edge.destination_service
    });
    let zero = EdgeStats::default();
    let before = before.unwrap_or(&zero);
    let (Some(requests), Some(successes)) = (
        edge.requests.checked_sub(before.requests),
        edge.successes.checked_sub(before.successes),
    ) else {
        return;
    };
    sum.requests += requests;
    sum.successes += successes;
    sum.rps += requests as f64 / seconds;
    // Buckets count only when both reports have the layout of the bounds.
    let buckets = bounds.len() + 1;
    let same_layout = previous.latency_bounds_seconds == bounds
        && latest.latency_bounds_seconds == bounds
        && edge.latency_buckets.len() == buckets
        && (before.latency_buckets.len() == buckets || before.latency_buckets.is_empty());
    if !same_layout {
        return;
    }
    if sum.buckets.is_empty() {
        sum.buckets = vec![0; buckets];
    }
    for (i, slot) in sum.buckets.iter_mut().enumerate() {
        let earlier = before.latency_buckets.get(i).copied().unwrap_or(0);
        *slot += edge.latency_buckets[i].saturating_sub(earlier);
    }
}

fn row(source: Option<String>, destination: String, sum: &Sum, bounds: &[f64]) -> TrafficStats {
    let quantile = |q| quantile_ms(q, bounds, &sum.buckets);
    TrafficStats {
        source,
        destination,
        requests: sum.total,
        rps: sum.rps,
        success_rate: (sum.requests > 0).then(|| sum.successes as f64 / sum.requests as f64),
        p50_ms: quantile(0.50),
        p95_ms: quantile(0.95),
        p99_ms: quantile(0.99),
    }
}

/// The `q` quantile in milliseconds of a histogram whose bucket `i` holds
/// observations up to `bounds[i]` seconds (the last, unbounded bucket is
/// reported as its lower bound). `None` without observations.
pub fn quantile_ms(q: f64, bounds: &[f64], buckets: &[u64]) -> Option<f64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 || buckets.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * count as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let Some(&upper) = bounds.get(i) else {
                return Some(lower * 1000.0);
            };
            let within = (rank - below as f64) / n as f64;
            return Some((lower + (upper - lower) * within) * 1000.0);
        }
        below += n;
    }
    bounds.last().map(|b| b * 1000.0)
}

#[cfg(test)]
mod tests;
