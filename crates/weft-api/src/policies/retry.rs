//! `Retry`: which failed requests are sent again, how often, how far
//! apart, and the budget that keeps retries from multiplying an outage.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    ValidationErrors,
    duration::{PolicyDuration, check_range},
    mesh::one_of,
    policy::{Policy, PolicySpec},
};

pub type Retry = Policy<RetrySpec>;

pub const MAX_ATTEMPTS: u32 = 10;
pub const DEFAULT_BUDGET_PERCENT: u32 = 20;
pub const DEFAULT_MIN_RETRIES_PER_SECOND: u32 = 10;
pub const DEFAULT_BACKOFF_BASE: PolicyDuration = PolicyDuration::from_millis(25);
pub const DEFAULT_BACKOFF_MAX: PolicyDuration = PolicyDuration::from_millis(250);
pub const DEFAULT_BUFFER_LIMIT: u32 = 64 * 1024;
pub const MAX_BUFFER_LIMIT: u32 = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySpec {
    /// Tries in all, the first included (1-10).
    pub attempts: u32,
    /// Each try's own deadline; a try that runs out may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<PolicyDuration>,
    /// What is retried; default `[connect-failure, reset, gateway-error]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<RetryOn>,
    /// gRPC status codes (names like `unavailable`, or numbers) retried
    /// when they come back in the response head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_status_codes: Vec<GrpcCode>,
    /// Retry POST, PATCH and other non-idempotent methods too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_non_idempotent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RetryBudget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Request bodies up to this size (declared by Content-Length) are kept
    /// for retries; larger ones are sent once. Default 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_limit_bytes: Option<u32>,
}

/// Retries within a 10 s window may be at most `percent` % of the requests
/// in it, or `minRetriesPerSecond` per second, whichever is more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    #[serde(default = "default_budget_percent")]
    pub percent: u32,
    #[serde(default = "default_min_retries")]
    pub min_retries_per_second: u32,
}

/// Exponential backoff with full jitter: the n-th retry waits a random time
/// up to `min(base × 2^n, max)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    #[serde(default = "default_backoff_base")]
    pub base: PolicyDuration,
    #[serde(default = "default_backoff_max")]
    pub max: PolicyDuration,
}

fn default_budget_percent() -> u32 {
    DEFAULT_BUDGET_PERCENT
}
fn default_min_retries() -> u32 {
    DEFAULT_MIN_RETRIES_PER_SECOND
}
fn default_backoff_base() -> PolicyDuration {
    DEFAULT_BACKOFF_BASE
}
fn default_backoff_max() -> PolicyDuration {
    DEFAULT_BACKOFF_MAX
}

/// A kind of failure that may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// No connection could be made (the request never left).
    ConnectFailure,
    /// The connection broke before a response head came.
    Reset,
    /// Any 5xx response.
    #[serde(rename = "5xx")]
    ServerError,
    /// 502, 503 or 504.
    GatewayError,
}

impl RetryOn {
    pub const ALL: [RetryOn; 4] = [
        RetryOn::ConnectFailure,
        RetryOn::Reset,
        RetryOn::ServerError,
        RetryOn::GatewayError,
    ];
    pub const DEFAULT: [RetryOn; 3] = [
        RetryOn::ConnectFailure,
        RetryOn::Reset,
        RetryOn::GatewayError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetryOn::ConnectFailure => "connect-failure",
            RetryOn::Reset => "reset",
            RetryOn::ServerError => "5xx",
            RetryOn::GatewayError => "gateway-error",
        }
    }
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &RetryOn::ALL, "a retry condition", |r| r.as_str())
    }
}

/// A gRPC status code, by name (`unavailable`) or number (`14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrpcCode(pub u32);

/// gRPC's status names, indexed by code.
pub const GRPC_CODE_NAMES: [&str; 17] = [
    "ok",
    "cancelled",
    "unknown",
    "invalid-argument",
    "deadline-exceeded",
    "not-found",
    "already-exists",
    "permission-denied",
    "resource-exhausted",
    "failed-precondition",
    "aborted",
    "out-of-range",
    "unimplemented",
    "internal",
    "unavailable",
    "data-loss",
    "unauthenticated",
];

impl Serialize for GrpcCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match usize::try_from(self.0)
            .ok()
            .and_then(|i| GRPC_CODE_NAMES.get(i))
        {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u32(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for GrpcCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Name(String),
        }
        let bad = |what: String| {
            serde::de::Error::custom(format!(
                "{what} is not a gRPC status code (1-16 or a name like unavailable)"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Number(n) if (1..=16).contains(&n) => Ok(GrpcCode(n)),
            Raw::Number(n) => Err(bad(n.to_string())),
            Raw::Name(name) => {
                let wanted = name.to_ascii_lowercase().replace('_', "-");
                GRPC_CODE_NAMES
                    .iter()
                    .position(|n| *n == wanted)
                    .filter(|i| *i > 0)
                    .and_then(|i| u32::try_from(i).ok())
                    .map(GrpcCode)
                    .ok_or_else(|| bad(format!("{name:?}")))
            }
        }
    }
}

impl RetrySpec {
    /// The conditions retried: the given ones, else the default set.
    pub fn conditions(&self) -> &[RetryOn] {
        if self.retry_on.is_empty() {
            &RetryOn::DEFAULT
        } else {
            &self.retry_on
        }
    }
}

impl PolicySpec for RetrySpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            errors.push(
                "attempts",
                format!("{} is not 1-{MAX_ATTEMPTS} (tries in all)", self.attempts),
            );
        }
        if let Some(t) = self.per_try_timeout {
            check_range(
                errors,
                "perTryTimeout",
                t,
                Duration::from_millis(1),
                super::timeout::MAX_TIMEOUT,
            );
        }
        if let Some(budget) = &self.budget
            && !(1..=100).contains(&budget.percent)
        {
            errors.push(
                "budget.percent",
                format!("{} is not a percentage (1-100)", budget.percent),
            );
        }
        if let Some(backoff) = &self.backoff {
            let limit = Duration::from_secs(60);
            check_range(errors, "backoff.base", backoff.base, Duration::ZERO, limit);
            check_range(errors, "backoff.max", backoff.max, Duration::ZERO, limit);
            if backoff.max < backoff.base {
                errors.push("backoff.max", "must not be less than backoff.base");
            }
        }
        if let Some(limit) = self.buffer_limit_bytes
            && limit > MAX_BUFFER_LIMIT
        {
            errors.push(
                "bufferLimitBytes",
                format!("{limit} is over the most a proxy buffers ({MAX_BUFFER_LIMIT})"),
            );
        }
        for (i, on) in self.retry_on.iter().enumerate() {
            if self.retry_on[..i].contains(on) {
                errors.push(
                    format!("retryOn[{i}]"),
                    format!("{} is listed twice", on.as_str()),
                );
            }
        }
    }
}
