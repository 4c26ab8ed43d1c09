//! A latency histogram of fixed buckets kept in atomics, so that recording a
//! request takes no lock (prometheus-client's `Histogram` takes a mutex per
//! observation). The same buckets feed `/metrics` and the `StatsReport`.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Upper bounds of the latency buckets, in seconds; one more bucket holds
/// everything slower. From 1 ms (a loopback hop) to 10 s (a slow upstream).
pub const BOUNDS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets including the unbounded last one.
pub const BUCKETS: usize = BOUNDS_SECONDS.len() + 1;

/// Bucket bounds in microseconds, for comparisons without floating point.
const BOUNDS_MICROS: [u64; BOUNDS_SECONDS.len()] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

/// What a histogram held at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub buckets: [u64; BUCKETS],
    pub sum_seconds: f64,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl LatencyHistogram {
    pub fn observe(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            // Precision to the microsecond is all a sum of latencies needs.
            #[allow(clippy::cast_precision_loss)]
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for (s, us) in BOUNDS_SECONDS.iter().zip(BOUNDS_MICROS) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    #[test]
    fn observations_land_in_their_bucket_bound_inclusive() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(1_000)); // le 0.001
        h.observe(Duration::from_micros(1_001)); // le 0.0025
        h.observe(Duration::from_millis(300)); // le 0.5
        h.observe(Duration::from_secs(60)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[8], 1);
        assert_eq!(s.buckets[BUCKETS - 1], 1);
        assert_eq!(s.count(), 4);
        assert!((s.sum_seconds - 60.302_001).abs() < 1e-9);
    }
}
