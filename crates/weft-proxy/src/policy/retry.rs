//! Retry decisions: which failures are retried, the budget that keeps
//! retries to a share of requests, and exponential backoff with jitter.

use std::{sync::Mutex, time::Duration};

use http::{HeaderMap, Method};

use crate::config::policies::RetryConfig;

/// How long the budget looks back, in one-second buckets.
const WINDOW_SECONDS: usize = 10;

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made: the request never left.
    Connect,
    /// The connection broke before a response head.
    Reset,
    /// The try ran out of its per-try timeout: retried like a gateway
    /// error (504) or a reset.
    Timeout,
    /// A response with this status (5xx) or gRPC status (non-zero).
    Status(u16),
    Grpc(u32),
}

impl Failure {
    /// The response head's failure, if it is one a retry could fix.
    pub fn of_response(status: u16, headers: &HeaderMap) -> Option<Failure> {
        if status >= 500 {
            return Some(Failure::Status(status));
        }
        // A trailers-only gRPC error carries its status in the head.
        let grpc = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        (grpc != 0).then_some(Failure::Grpc(grpc))
    }
}

/// Whether `failure` is one `config` retries, for a request with `method`.
pub fn retryable(config: &RetryConfig, failure: Failure, method: &Method) -> bool {
    let idempotent = config.allow_non_idempotent || method.is_idempotent();
    match failure {
        // Nothing reached the upstream: safe whatever the method.
        Failure::Connect => config.on_connect_failure,
        Failure::Reset => idempotent && config.on_reset,
        Failure::Timeout => {
            idempotent && (config.on_reset || config.on_gateway_error || config.on_5xx)
        }
        Failure::Status(s) => {
            idempotent && (config.on_5xx || (config.on_gateway_error && (502..=504).contains(&s)))
        }
        // Every gRPC call is a POST: listing a status (UNAVAILABLE: the
        // call was not processed) is the operator's word that it is safe.
        Failure::Grpc(code) => config.grpc_status_codes.contains(&code),
    }
}

/// The wait before retry number `retry` (0 for the first): a random time up
/// to `min(base × 2^retry, max)`, so that callers retrying together spread
/// out.
pub fn backoff(config: &RetryConfig, retry: u32) -> Duration {
    let base = config.backoff_base.get();
    let cap = base
        .checked_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX)
        .min(config.backoff_max.get());
    cap.mul_f64(fastrand::f64())
}

/// Retries may be at most `percent` % of the requests of the last ten
/// seconds, or `min_per_second` a second, whichever allows more.
#[derive(Debug)]
pub struct Budget {
    percent: u64,
    min_per_second: u64,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// (requests, retries) per second, indexed by second modulo the size.
    buckets: [(u64, u64); WINDOW_SECONDS],
    /// The second the newest bucket is for.
    second: u64,
}

impl Window {
    /// Moves the window to `second`, clearing the buckets it skipped.
    fn advance(&mut self, second: u64) -> &mut (u64, u64) {
        if second > self.second {
            let stale = (second - self.second).min(WINDOW_SECONDS as u64);
            for s in 0..stale {
                let index = usize::try_from((second - s) % WINDOW_SECONDS as u64).unwrap_or(0);
                self.buckets[index] = (0, 0);
            }
            self.second = second;
        }
        let index = usize::try_from(self.second % WINDOW_SECONDS as u64).unwrap_or(0);
        &mut self.buckets[index]
    }
}

impl Budget {
    pub fn new(percent: u32, min_per_second: u32) -> Self {
        Self {
            percent: u64::from(percent),
            min_per_second: u64::from(min_per_second),
            window: Mutex::new(Window::default()),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // Poisoned only by a panic in this module's arithmetic.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request (its first try) at `now_ms`.
    pub fn deposit(&self, now_ms: u64) {
        self.window().advance(now_ms / 1000).0 += 1;
    }

    /// Takes the right to retry at `now_ms`, if the budget has room.
    pub fn withdraw(&self, now_ms: u64) -> bool {
        let mut window = self.window();
        window.advance(now_ms / 1000);
        let (requests, retries) = window
            .buckets
            .iter()
            .fold((0, 0), |(a, b), (r, t)| (a + r, b + t));
        let allowed =
            (requests * self.percent / 100).max(self.min_per_second * WINDOW_SECONDS as u64);
        if retries >= allowed {
            return false;
        }
        window.advance(now_ms / 1000).1 += 1;
        true
    }
}

#[cfg(test)]
mod tests;
