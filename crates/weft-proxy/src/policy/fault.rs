//! FaultInjection: which requests (or connections) get an injected abort
//! or delay, decided at random by the configured shares.

use std::time::Duration;

use crate::config::policies::FaultConfig;

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    pub delay: Option<Duration>,
    /// The status to answer instead of calling the destination.
    pub abort: Option<u16>,
}

fn roll(ppm: u32) -> bool {
    fastrand::u32(..weft_api::duration::Percent::MILLION) < ppm
}

pub fn decide(config: &FaultConfig) -> Faults {
    Faults {
        delay: config
            .delay
            .and_then(|(ppm, d)| roll(ppm).then_some(d.get())),
        abort: config
            .abort
            .and_then(|(ppm, status)| roll(ppm).then_some(status)),
    }
}

#[cfg(test)]
mod tests {
    use weft_api::duration::PolicyDuration;

    use super::*;

    #[test]
    fn shares_hold() {
        let config = FaultConfig {
            name: "f".into(),
            abort: Some((250_000, 503)),
            delay: Some((1_000_000, PolicyDuration::from_millis(5))),
        };
        let aborted = (0..10_000)
            .filter(|_| decide(&config).abort.is_some())
            .count();
        assert!((2_300..=2_700).contains(&aborted), "{aborted}");
        assert_eq!(decide(&config).delay, Some(Duration::from_millis(5)));
        let none = FaultConfig {
            abort: None,
            delay: None,
            ..config
        };
        assert_eq!(decide(&none), Faults::default());
    }
}
