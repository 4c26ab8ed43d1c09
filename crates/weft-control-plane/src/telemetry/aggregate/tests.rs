use super::*;

const BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];

fn edge(
    direction: &str,
    source: &str,
    destination: &str,
    requests: u64,
    successes: u64,
    buckets: [u64; 4],
) -> EdgeStats {
    EdgeStats {
        direction: direction.into(),
        source_service: source.into(),
        destination_service: destination.into(),
        requests,
        successes,
        latency_buckets: buckets.to_vec(),
    }
}

fn report(taken_at_ms: u64, edges: Vec<EdgeStats>) -> StatsReport {
    StatsReport {
        taken_at_ms,
        latency_bounds_seconds: BOUNDS.to_vec(),
        edges,
    }
}

fn reported(previous: Option<StatsReport>, latest: StatsReport) -> Reported {
    Reported {
        session: 1,
        previous,
        latest,
    }
}

#[test]
fn quantiles_interpolate_inside_buckets() {
    // 100 observations: 50 up to 10 ms, 50 in (10 ms, 100 ms].
    let buckets = [50, 50, 0, 0];
    assert_eq!(quantile_ms(0.5, &BOUNDS, &buckets), Some(10.0));
    let p75 = quantile_ms(0.75, &BOUNDS, &buckets).unwrap();
    assert!((p75 - 55.0).abs() < 1e-9, "{p75}");
    assert_eq!(quantile_ms(0.25, &BOUNDS, &buckets), Some(5.0));
    // The unbounded bucket is reported as its lower bound.
    assert_eq!(quantile_ms(0.99, &BOUNDS, &[0, 0, 0, 3]), Some(1000.0));
    assert_eq!(quantile_ms(0.5, &BOUNDS, &[0, 0, 0, 0]), None);
    assert_eq!(quantile_ms(0.5, &BOUNDS, &[1, 2]), None);
}

#[test]
fn rates_and_success_come_from_the_interval() {
    let before = report(
        1_000,
        vec![edge("outbound", "web", "backend", 100, 100, [100, 0, 0, 0])],
    );
    // 2 s later: 40 more requests, 10 of them failed, all slower.
    let after = report(
        3_000,
        vec![edge(
            "outbound",
            "web",
            "backend",
            140,
            130,
            [100, 40, 0, 0],
        )],
    );
    let stats = mesh_stats("default", &[reported(Some(before), after)]);
    assert!(stats.services.is_empty());
    let [e] = stats.edges.as_slice() else {
        panic!("{stats:?}")
    };
    assert_eq!(e.source.as_deref(), Some("web"));
    assert_eq!(e.destination, "backend");
    assert_eq!(e.requests, 140);
    assert!((e.rps - 20.0).abs() < 1e-9);
    assert_eq!(e.success_rate, Some(0.75));
    // Every request of the interval took 10–100 ms.
    let p50 = e.p50_ms.unwrap();
    assert!((p50 - 55.0).abs() < 1e-9, "{p50}");
}

#[test]
fn services_sum_their_instances() {
    let one = reported(
        Some(report(
            0,
            vec![edge("inbound", "web", "backend", 0, 0, [0; 4])],
        )),
        report(
            1_000,
            vec![edge("inbound", "web", "backend", 10, 10, [10, 0, 0, 0])],
        ),
    );
    // A second instance that has reported once: its total counts, its
    // rate is not known yet.
    let two = reported(
        None,
        report(
            500,
            vec![edge("inbound", "", "backend", 7, 7, [7, 0, 0, 0])],
        ),
    );
    let stats = mesh_stats("default", &[one, two]);
    let [s] = stats.services.as_slice() else {
        panic!("{stats:?}")
    };
    assert_eq!(s.source, None);
    assert_eq!(s.requests, 17);
    assert!((s.rps - 10.0).abs() < 1e-9);
    assert_eq!(s.success_rate, Some(1.0));
}

#[test]
fn an_edge_new_in_the_interval_counts_from_zero_and_resets_are_skipped() {
    let fresh = reported(
        Some(report(0, vec![])),
        report(
            1_000,
            vec![edge("outbound", "web", "db", 5, 5, [5, 0, 0, 0])],
        ),
    );
    let reset = reported(
        Some(report(
            0,
            vec![edge("outbound", "web", "cache", 50, 50, [50, 0, 0, 0])],
        )),
        report(
            1_000,
            vec![edge("outbound", "web", "cache", 3, 3, [3, 0, 0, 0])],
        ),
    );
    let stats = mesh_stats("default", &[fresh, reset]);
    let cache = stats
        .edges
        .iter()
        .find(|e| e.destination == "cache")
        .unwrap();
    assert_eq!((cache.rps, cache.success_rate), (0.0, None));
    let db = stats.edges.iter().find(|e| e.destination == "db").unwrap();
    assert!((db.rps - 5.0).abs() < 1e-9);
}

#[test]
fn no_traffic_in_the_interval_has_no_rate_or_latency() {
    let idle = reported(
        Some(report(
            0,
            vec![edge("outbound", "web", "backend", 9, 9, [9, 0, 0, 0])],
        )),
        report(
            1_000,
            vec![edge("outbound", "web", "backend", 9, 9, [9, 0, 0, 0])],
        ),
    );
    let stats = mesh_stats("default", &[idle]);
    let e = &stats.edges[0];
    assert_eq!((e.requests, e.rps), (9, 0.0));
    assert_eq!((e.success_rate, e.p99_ms), (None, None));
}
