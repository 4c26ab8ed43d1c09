//! Latency samples and their percentiles (nearest-rank, exact: every sample
//! is kept, which is fine for the few million a run records).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of one run, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Recorded latencies, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    ns: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            ns: Vec::with_capacity(n),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.ns.extend(other.ns);
    }

    pub fn len(&self) -> usize {
        self.ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }

    /// Sorts the samples and summarizes them; `None` without samples.
    pub fn summary(mut self) -> Option<LatencySummary> {
        if self.ns.is_empty() {
            return None;
        }
        self.ns.sort_unstable();
        let us = |ns: u64| ns as f64 / 1_000.0;
        let sum: u128 = self.ns.iter().map(|&n| u128::from(n)).sum();
        Some(LatencySummary {
            count: self.ns.len() as u64,
            mean_us: sum as f64 / self.ns.len() as f64 / 1_000.0,
            p50_us: us(percentile(&self.ns, 50.0)),
            p99_us: us(percentile(&self.ns, 99.0)),
            p999_us: us(percentile(&self.ns, 99.9)),
            max_us: us(self.ns[self.ns.len() - 1]),
        })
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least `pct` percent of the values at or below it. 0 when empty.
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    sorted[rank(pct, n) - 1]
}

/// The 1-based nearest rank of `pct` among `n` values. The small epsilon
/// keeps float error (99.9 % of 1000 = 999.0000000000001) from bumping it.
fn rank(pct: f64, n: usize) -> usize {
    let r = ((pct / 100.0) * n as f64 - 1e-9).ceil() as usize;
    r.clamp(1, n)
}

/// Percentiles of plain millisecond values (control-plane propagation).
pub fn percentiles_ms(mut values: Vec<f64>) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    values.sort_by(f64::total_cmp);
    let at = |pct: f64| values[rank(pct, values.len()) - 1];
    (at(50.0), at(99.0), values[values.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_in_microseconds() {
        let mut s = Samples::default();
        for us in [300, 100, 200, 400] {
            s.record(Duration::from_micros(us));
        }
        let sum = s.summary().unwrap();
        assert_eq!(sum.count, 4);
        assert_eq!(sum.p50_us, 200.0);
        assert_eq!(sum.p99_us, 400.0);
        assert_eq!(sum.max_us, 400.0);
        assert_eq!(sum.mean_us, 250.0);
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn millisecond_percentiles() {
        let (p50, p99, max) = percentiles_ms((1..=100).map(f64::from).rev().collect());
        assert_eq!((p50, p99, max), (50.0, 99.0, 100.0));
        assert_eq!(percentiles_ms(vec![]), (0.0, 0.0, 0.0));
    }
}
