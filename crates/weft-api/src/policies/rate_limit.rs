//! `RateLimit`: a token bucket in the destination's inbound. HTTP requests
//! over the limit get 429 with `Retry-After`; TCP connections over it are
//! closed. Each RateLimit has its own bucket per inbound it selects, shared
//! by the callers its `from` selects (`from` omitted: every caller).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{PolicyDuration, check_range},
    policy::{Policy, PolicySpec},
};

pub type RateLimit = Policy<RateLimitSpec>;

pub const DEFAULT_INTERVAL: PolicyDuration = PolicyDuration::from_millis(1000);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests (HTTP) or connections (TCP) allowed per `interval`.
    pub requests: u32,
    #[serde(default = "default_interval")]
    pub interval: PolicyDuration,
    /// How many may come at once after a quiet spell; default `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

fn default_interval() -> PolicyDuration {
    DEFAULT_INTERVAL
}

impl RateLimitSpec {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }
}

impl PolicySpec for RateLimitSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        if self.requests == 0 {
            errors.push("requests", "must be at least 1");
        }
        if self.burst == Some(0) {
            errors.push("burst", "must be at least 1");
        }
        check_range(
            errors,
            "interval",
            self.interval,
            Duration::from_millis(1),
            Duration::from_secs(24 * 3600),
        );
    }
}
