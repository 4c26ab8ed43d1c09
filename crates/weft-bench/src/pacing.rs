//! Open-loop pacing with coordinated-omission correction.
//!
//! Request `i` has an intended send time `start + i / rate`, fixed before
//! the run. Its latency is measured from that intended time, not from when
//! it was really sent: when the system under test stalls, the requests that
//! should have gone out during the stall are charged the stall, as a real
//! independent client population would see it.
//!
//! Tokio's timer has a 1 ms resolution, which is coarse next to the
//! microseconds being measured, so [`wait_until`] sleeps to within a
//! millisecond and then yields in a loop to the exact instant (that loop
//! keeps the client's own core busy: pin the client away from the proxies).

use std::time::Duration;

use tokio::time::Instant;

/// The intended send times of an open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate: f64,
    count: u64,
}

impl Schedule {
    /// `rate` requests per second for `duration`, the first at `start`.
    pub fn new(start: Instant, rate: f64, duration: Duration) -> Self {
        let rate = rate.max(1e-3);
        let count = (duration.as_secs_f64() * rate).floor() as u64;
        Self { start, rate, count }
    }

    /// How many requests the run sends.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Intended send time of request `i` (computed from the start and the
    /// exact rate, so rounding errors do not accumulate).
    pub fn intended(&self, i: u64) -> Instant {
        let nanos = i as f64 * 1e9 / self.rate;
        self.start + Duration::from_nanos(nanos as u64)
    }
}

/// Latency of a request that was meant to go out at `intended` and
/// completed at `done` (zero if `done` is somehow earlier).
pub fn corrected_latency(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

/// Waits until `at`: sleeps while more than a millisecond remains, then
/// yields to the runtime until the instant has passed.
pub async fn wait_until(at: Instant) {
    let coarse = Duration::from_millis(1);
    let now = Instant::now();
    if at > now + coarse * 2 {
        tokio::time::sleep_until(at - coarse).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_evenly_spaced_and_does_not_drift() {
        let start = Instant::now();
        let s = Schedule::new(start, 3_000.0, Duration::from_secs(2));
        assert_eq!(s.count(), 6_000);
        assert_eq!(s.intended(0), start);
        let last = s.intended(5_999) - start;
        // 5999 / 3000 s, within a microsecond despite 1/3000 s not being exact.
        assert!(
            (last.as_secs_f64() - 5_999.0 / 3_000.0).abs() < 1e-6,
            "{last:?}"
        );
    }

    #[test]
    fn latency_counts_from_the_intended_time() {
        let start = Instant::now();
        let s = Schedule::new(start, 1_000.0, Duration::from_secs(1));
        // Request 10 was due at 10 ms; a stall held it back until 50 ms and
        // it took 1 ms: it is charged 41 ms, not 1 ms.
        let done = start + Duration::from_millis(51);
        assert_eq!(
            corrected_latency(s.intended(10), done),
            Duration::from_millis(41)
        );
        assert_eq!(corrected_latency(done, start), Duration::ZERO);
    }

    #[tokio::test]
    async fn waits_reach_the_instant() {
        let at = Instant::now() + Duration::from_millis(3);
        wait_until(at).await;
        assert!(Instant::now() >= at);
    }
}
