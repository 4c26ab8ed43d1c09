//! The targets, each with what was measured and a verdict.
//! MB here is 10^6 bytes, KB 10^3.

use serde::Serialize;

use super::compare::{HAPROXY, latency, throughput};
use crate::results::{ProcRss, Results};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub verdict: Verdict,
}

fn t(target: &str, measured: String, verdict: Verdict) -> Target {
    Target {
        target: target.into(),
        measured,
        verdict,
    }
}

fn check(ok: bool) -> Verdict {
    if ok { Verdict::Met } else { Verdict::Missed }
}

fn not_measured(target: &str, why: &str) -> Target {
    t(target, why.into(), Verdict::NotMeasured)
}

const MB: f64 = 1e6;
const WEFT_MTLS: &str = "weft-mtls";
const HAPROXY_TLS: &str = "haproxy-tls";

fn max_bytes(list: &[ProcRss]) -> Option<u64> {
    list.iter().map(|r| r.bytes).max()
}

pub fn evaluate(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let lat = latency(results);
    let row = |topology: &str| {
        lat.iter()
            .find(|r| r.workload == "http1-1k" && r.topology == topology)
    };
    // The latency target is for the pairs doing mTLS.
    let (weft, haproxy) = (row(WEFT_MTLS), row(HAPROXY_TLS));
    const P50: &str = "HTTP/1.1 at 1,000 req/s: Weft mTLS pair adds ≤ 100 µs p50 over direct";
    const P99: &str = "HTTP/1.1 at 1,000 req/s: Weft mTLS pair adds ≤ 250 µs p99 over direct";
    const VS_HA: &str =
        "HTTP/1.1 at 1,000 req/s: Weft mTLS pair adds less than the HAProxy TLS pair (p50 and p99)";
    match weft.and_then(|w| Some((w, w.added_p50_us?, w.added_p99_us?))) {
        Some((_, p50, p99)) => {
            out.push(t(P50, format!("{p50:+.0} µs"), check(p50 <= 100.0)));
            out.push(t(P99, format!("{p99:+.0} µs"), check(p99 <= 250.0)));
        }
        None => {
            out.push(not_measured(P50, "no Weft mTLS or direct http1-1k run"));
            out.push(not_measured(P99, "no Weft mTLS or direct http1-1k run"));
        }
    }
    match (weft, haproxy) {
        (Some(w), Some(h)) => match (
            w.added_p50_us,
            w.added_p99_us,
            h.added_p50_us,
            h.added_p99_us,
        ) {
            (Some(w50), Some(w99), Some(h50), Some(h99)) => out.push(t(
                VS_HA,
                format!("Weft {w50:+.0} / {w99:+.0} µs, HAProxy {h50:+.0} / {h99:+.0} µs"),
                check(w50 < h50 && w99 < h99),
            )),
            _ => out.push(not_measured(VS_HA, "no direct http1-1k run")),
        },
        _ => out.push(not_measured(
            VS_HA,
            "no Weft mTLS or HAProxy TLS http1-1k run",
        )),
    }

    const CPU: &str = "Max throughput (HTTP/1.1) per proxy CPU-second ≥ the HAProxy pair's";
    let tp = throughput(results);
    let per_cpu = |topology: &str| {
        tp.iter()
            .find(|r| r.workload == "http1-max" && r.topology == topology)
            .and_then(|r| r.per_proxy_cpu_s)
    };
    match (per_cpu("weft"), per_cpu(HAPROXY)) {
        (Some(w), Some(h)) => out.push(t(
            CPU,
            format!("Weft {w:.0}, HAProxy {h:.0} req per CPU-s ({:.2}×)", w / h),
            check(w >= h),
        )),
        _ => out.push(not_measured(CPU, "no Weft or HAProxy http1-max run")),
    }

    let weft_memory = results
        .topologies
        .iter()
        .find(|t| t.id == "weft")
        .and_then(|t| t.memory.as_ref());
    const IDLE: &str = "Proxy memory idle ≤ 15 MB (each proxy)";
    match weft_memory.and_then(|m| max_bytes(&m.idle)) {
        Some(b) => out.push(t(
            IDLE,
            format!("{:.1} MB (largest of the pair)", b as f64 / MB),
            check(b as f64 <= 15.0 * MB),
        )),
        None => out.push(not_measured(IDLE, "no Weft memory sample")),
    }
    const CONNS: &str = "Proxy memory with 10,000 connections ≤ 40 MB";
    match weft_memory.and_then(|m| m.connections.as_ref()) {
        Some(c) if c.held >= 10_000 => {
            let b = max_bytes(&c.rss).unwrap_or(0);
            out.push(t(
                CONNS,
                format!("{:.1} MB with {} connections", b as f64 / MB, c.held),
                check(b as f64 <= 40.0 * MB),
            ))
        }
        Some(c) => out.push(not_measured(
            CONNS,
            &format!("only {} connections held (of {})", c.held, c.wanted),
        )),
        None => out.push(not_measured(CONNS, "no held-connections run")),
    }

    let cp = results
        .cp_scale
        .iter()
        .filter(|c| c.dataplanes >= 10_000)
        .max_by_key(|c| c.dataplanes);
    const CP_TOTAL: &str = "Control plane with 10,000 dataplanes ≤ 2 GB";
    const CP_EACH: &str = "Control plane ≤ 200 KB per dataplane";
    const CP_PUSH: &str = "A change is acked by all 10,000 within 1 s at p99";
    match cp {
        Some(c) => {
            let total = c.cp_rss_after_bytes as f64;
            let partial = if c.registered < c.dataplanes {
                format!(
                    " (only {} of {} registered within {:.0} s)",
                    c.registered, c.dataplanes, c.register_timeout_s
                )
            } else {
                String::new()
            };
            out.push(t(
                CP_TOTAL,
                format!("{:.0} MB{partial}", total / MB),
                check(total <= 2e9),
            ));
            out.push(t(
                CP_EACH,
                format!("{:.1} KB{partial}", c.rss_per_dataplane_bytes / 1e3),
                check(c.rss_per_dataplane_bytes <= 200e3),
            ));
            let all = c.add.received == c.add.expected;
            let measured = if all {
                format!("p99 {:.0} ms, max {:.0} ms", c.add.p99_ms, c.add.max_ms)
            } else {
                format!(
                    "{} of {} received within {:.0} s (p99 of those {:.0} ms)",
                    c.add.received, c.add.expected, c.change_timeout_s, c.add.p99_ms
                )
            };
            out.push(t(CP_PUSH, measured, check(all && c.add.p99_ms <= 1_000.0)));
        }
        None => {
            let largest = results
                .cp_scale
                .iter()
                .map(|c| c.dataplanes)
                .max()
                .unwrap_or(0);
            let why = format!("no run with 10,000 dataplanes (largest: {largest})");
            for target in [CP_TOTAL, CP_EACH, CP_PUSH] {
                out.push(not_measured(target, &why));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::tests::sample;

    #[test]
    fn verdicts_from_the_sample() {
        let targets = evaluate(&sample());
        let v = |prefix: &str| {
            targets
                .iter()
                .find(|t| t.target.starts_with(prefix))
                .unwrap()
                .verdict
        };
        // The Weft mTLS pair adds 90 µs p50 (met) and 220 µs p99 (met); the
        // HAProxy TLS pair adds 110 / 320.
        assert_eq!(targets[0].verdict, Verdict::Met);
        assert_eq!(targets[1].verdict, Verdict::Met);
        assert_eq!(targets[2].verdict, Verdict::Met);
        assert_eq!(v("Max throughput"), Verdict::Met);
        assert_eq!(v("Proxy memory idle"), Verdict::NotMeasured);
        assert_eq!(v("Control plane with"), Verdict::NotMeasured);
    }

    #[test]
    fn a_control_plane_that_cannot_keep_up_misses() {
        let mut results = sample();
        results.cp_scale.push(crate::results::CpScale {
            dataplanes: 10_000,
            registered: 7_500,
            cp_rss_after_bytes: 300_000_000,
            rss_per_dataplane_bytes: 38_000.0,
            add: crate::results::Propagation {
                expected: 10_000,
                received: 9_000,
                p99_ms: 40_000.0,
                ..Default::default()
            },
            register_timeout_s: 75.0,
            change_timeout_s: 45.0,
            ..Default::default()
        });
        let targets = evaluate(&results);
        let find = |prefix: &str| {
            targets
                .iter()
                .find(|t| t.target.starts_with(prefix))
                .unwrap()
                .clone()
        };
        assert_eq!(find("Control plane with").verdict, Verdict::Met);
        assert!(
            find("Control plane with")
                .measured
                .contains("only 7500 of 10000 registered")
        );
        assert_eq!(find("Control plane ≤").verdict, Verdict::Met);
        let push = find("A change");
        assert_eq!(push.verdict, Verdict::Missed);
        assert!(
            push.measured
                .starts_with("9000 of 10000 received within 45 s"),
            "{}",
            push.measured
        );
    }
}
