//! Outlier detection: an endpoint that answers with too many 5xx (or
//! gateway errors, or nothing) in a row is ejected for the base ejection
//! time × the times it has been ejected (at most the maximum), while no
//! more than the allowed share of endpoints is out at once.

use std::sync::atomic::Ordering;

use tracing::info;

use super::endpoints::{Endpoint, Snapshot};
use crate::config::policies::OutlierConfig;

/// What one exchange with an endpoint came to, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response whose status is not a 5xx.
    Success,
    /// A 5xx other than 502, 503, 504.
    ServerError,
    /// 502, 503, 504, or no response (connect failure, reset, timeout).
    GatewayError,
}

impl Outcome {
    pub fn of_status(status: u16) -> Self {
        match status {
            502..=504 => Outcome::GatewayError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::Success,
        }
    }
}

/// Records `outcome` for `endpoint`, ejecting it when a threshold is
/// reached (then `true`). `now` is the stack's clock in milliseconds.
pub fn record<T>(
    config: &OutlierConfig,
    snapshot: &Snapshot<T>,
    endpoint: &Endpoint<T>,
    outcome: Outcome,
    now: u64,
) -> bool {
    let state = &endpoint.state;
    if outcome == Outcome::Success {
        // Cheap when nothing is counted: a load, no store.
        for counter in [&state.consecutive_5xx, &state.consecutive_gateway] {
            if counter.load(Ordering::Relaxed) != 0 {
                counter.store(0, Ordering::Relaxed);
            }
        }
        return false;
    }
    let fives = state.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
    let gateway = if outcome == Outcome::GatewayError {
        state.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        state.consecutive_gateway.swap(0, Ordering::Relaxed);
        0
    };
    let tripped = config.consecutive_5xx.is_some_and(|max| fives >= max)
        || config
            .consecutive_gateway_errors
            .is_some_and(|max| gateway >= max);
    tripped && !endpoint.ejected(now) && eject(config, snapshot, endpoint, now)
}

fn eject<T>(
    config: &OutlierConfig,
    snapshot: &Snapshot<T>,
    endpoint: &Endpoint<T>,
    now: u64,
) -> bool {
    let total = snapshot.endpoints.len();
    let ejected = snapshot.endpoints.iter().filter(|e| e.ejected(now)).count();
    let percent = usize::try_from(config.max_ejection_percent).unwrap_or(100);
    // At least one may go whenever the share allows any, so that a small
    // set (two endpoints at 50 %) can still lose its bad one.
    let allowed = if percent == 0 {
        0
    } else {
        (total * percent / 100).max(1)
    };
    if ejected >= allowed {
        return false;
    }
    let state = &endpoint.state;
    let times = state.times_ejected.fetch_add(1, Ordering::Relaxed) + 1;
    let duration = config
        .base_ejection_time
        .as_millis()
        .saturating_mul(u64::from(times))
        .min(config.max_ejection_time.as_millis());
    state.ejected_until.store(now + duration, Ordering::Relaxed);
    // A returning endpoint starts counting afresh.
    state.consecutive_5xx.store(0, Ordering::Relaxed);
    state.consecutive_gateway.store(0, Ordering::Relaxed);
    info!(endpoint = %endpoint.addr, times, ejection_ms = duration, "endpoint ejected by outlier detection");
    true
}

#[cfg(test)]
mod tests;
