//! Jittered exponential backoff between attempts that talk to the control
//! plane (reconnects, certificate requests), so that a fleet of proxies
//! does not retry in lockstep after an outage.

use std::time::Duration;

/// Delays that double from `initial` up to `max`, each jittered.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self::with_rng(initial, max, fastrand::Rng::new())
    }

    pub fn with_rng(initial: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        Self {
            initial,
            max,
            current: initial,
            rng,
        }
    }

    /// The delay before the next attempt: uniformly between half and all of
    /// the current step (so it never drops to zero), then the step doubles
    /// up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (step * 2).min(self.max);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(self.rng.u64(0..=jitter_ms))
    }

    /// After a success, start again from the first step.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn doubles_from_100ms_to_a_5s_cap_with_jitter() {
        let mut backoff = Backoff::with_rng(INITIAL, MAX, fastrand::Rng::with_seed(7));
        let steps: [u32; 9] = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for step in steps {
            let delay = backoff.next_delay().as_millis();
            let step = u128::from(step);
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay}ms outside [{}, {step}]",
                step / 2
            );
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|seed| {
                Backoff::with_rng(INITIAL, MAX, fastrand::Rng::with_seed(seed)).next_delay()
            })
            .collect();
        assert!(delays.len() > 5, "{delays:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(INITIAL, MAX);
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }
}
