//! RateLimit at an inbound: one token bucket per policy, shared by every
//! caller the policy selects. A refused HTTP request gets 429 with
//! `Retry-After`; a refused TCP connection is closed.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::config::RateLimitConfig;

/// A token bucket refilled continuously at `requests / interval`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    /// Tokens left and when they were counted. The lock is held only for
    /// the arithmetic, never across an await.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(requests: u32, interval: Duration, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            capacity,
            per_second: f64::from(requests) / interval.as_secs_f64().max(0.001),
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            // Only a panic mid-arithmetic poisons it; the numbers are fine.
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let tokens = (tokens + elapsed * self.per_second).min(self.capacity);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

/// An inbound's rate limits, most specific first, each with its bucket.
#[derive(Debug, Default)]
pub struct InboundRateLimits {
    limits: Vec<(RateLimitConfig, TokenBucket)>,
}

/// A refusal: which policy, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub policy: String,
    pub retry_after: Duration,
}

impl InboundRateLimits {
    pub fn new(configs: &[RateLimitConfig]) -> Self {
        Self {
            limits: configs
                .iter()
                .map(|c| {
                    let bucket = TokenBucket::new(c.requests, c.interval.get(), c.burst);
                    (c.clone(), bucket)
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Applies the first policy whose `from` matches one of the caller's
    /// `services` (a policy for any caller matches everyone).
    pub fn check(&self, services: &[String]) -> Result<(), Limited> {
        let Some((config, bucket)) = self.limits.iter().find(|(c, _)| match &c.from_service {
            None => true,
            Some(s) => services.iter().any(|caller| caller == s),
        }) else {
            return Ok(());
        };
        bucket.take(Instant::now()).map_err(|retry_after| Limited {
            policy: config.name.clone(),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let bucket = TokenBucket::new(10, Duration::from_secs(1), 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // 10 per second: one more token every 100 ms.
        let later = start + Duration::from_millis(1000);
        let allowed = (0..20).filter(|_| bucket.take(later).is_ok()).count();
        assert_eq!(allowed, 5, "refilled to the burst, not beyond");
    }

    #[test]
    fn first_matching_source_decides() {
        let config = |name: &str, from: Option<&str>, requests| RateLimitConfig {
            name: name.into(),
            from_service: from.map(Into::into),
            requests,
            interval: weft_api::duration::PolicyDuration::from_millis(60_000),
            burst: requests,
        };
        let limits =
            InboundRateLimits::new(&[config("web", Some("web"), 1), config("any", None, 2)]);
        let web = ["web".to_owned()];
        assert!(limits.check(&web).is_ok());
        assert_eq!(limits.check(&web).unwrap_err().policy, "web");
        assert!(limits.check(&[]).is_ok());
        assert!(limits.check(&[]).is_ok());
        assert_eq!(limits.check(&[]).unwrap_err().policy, "any");
    }
}
