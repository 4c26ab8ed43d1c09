//! The `StatsReport` a proxy sends on its control-plane stream: its request
//! counters per (direction, source, destination), routes summed, with the
//! latency buckets, all cumulative since the proxy started.

use std::{collections::BTreeMap, time::Instant};

use weft_api::proto::{EdgeStats, StatsReport};

use super::{
    histogram::{BOUNDS_SECONDS, BUCKETS},
    labels::Labels,
    traffic::Traffic,
};

/// (requests, successes, latency buckets) of one edge.
type Totals = (u64, u64, [u64; BUCKETS]);

/// The report of what `traffic` counted so far; `started` is the clock
/// origin of `taken_at_ms`.
pub fn build(traffic: &Traffic, started: Instant) -> StatsReport {
    let mut edges: BTreeMap<(&str, &str, &str), Totals> = BTreeMap::new();
    let requests = traffic.requests.snapshot();
    for (key, counters) in requests.iter() {
        let [direction, source, destination, _route] = key.values();
        let (all, ok) = counters.totals();
        let latency = counters.latency.snapshot();
        let edge = edges
            .entry((direction, source, destination))
            .or_insert((0, 0, [0; BUCKETS]));
        edge.0 += all;
        edge.1 += ok;
        for (sum, n) in edge.2.iter_mut().zip(latency.buckets) {
            *sum += n;
        }
    }
    StatsReport {
        taken_at_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        latency_bounds_seconds: BOUNDS_SECONDS.to_vec(),
        edges: edges
            .into_iter()
            .map(
                |((direction, source, destination), (requests, successes, buckets))| EdgeStats {
                    direction: direction.to_owned(),
                    source_service: source.to_owned(),
                    destination_service: destination.to_owned(),
                    requests,
                    successes,
                    latency_buckets: buckets.to_vec(),
                },
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn routes_are_summed_per_edge() {
        let t = Traffic::default();
        let key = |route| ["outbound", "web", "backend", route];
        t.request(key(""), 200, Duration::from_millis(3));
        t.request(key("canary"), 503, Duration::from_millis(30));
        t.request(["inbound", "", "web", ""], 200, Duration::from_millis(1));
        let report = build(&t, Instant::now());
        assert_eq!(report.latency_bounds_seconds.len() + 1, BUCKETS);
        assert_eq!(report.edges.len(), 2);
        let out = report
            .edges
            .iter()
            .find(|e| e.direction == "outbound")
            .unwrap();
        assert_eq!((out.requests, out.successes), (2, 1));
        assert_eq!(out.latency_buckets.iter().sum::<u64>(), 2);
        assert_eq!(out.latency_buckets.len(), BUCKETS);
        let inbound = report
            .edges
            .iter()
            .find(|e| e.direction == "inbound")
            .unwrap();
        assert_eq!(inbound.source_service, "");
        assert_eq!(inbound.destination_service, "web");
    }
}
