//! `CircuitBreaker`: limits on what one caller sends a destination at once
//! (over a limit: an immediate 503, not a queue), and outlier detection,
//! which ejects endpoints that keep failing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{PolicyDuration, check_range},
    policy::{Policy, PolicySpec},
};

pub type CircuitBreaker = Policy<CircuitBreakerSpec>;

pub const DEFAULT_BASE_EJECTION_TIME: PolicyDuration = PolicyDuration::from_millis(30_000);
pub const DEFAULT_MAX_EJECTION_TIME: PolicyDuration = PolicyDuration::from_millis(300_000);
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    /// Connections from the app through the outbound at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// HTTP requests waiting for their response head at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    /// HTTP requests in flight (until their response ends) at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// Consecutive failures of one endpoint eject it for `baseEjectionTime` ×
/// the times it was ejected (at most `maxEjectionTime`), while no more than
/// `maxEjectionPercent` % of the endpoints are ejected (at least one may be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Any 5xx response, or no response at all.
    #[serde(
        default,
        rename = "consecutive5xx",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx: Option<u32>,
    /// 502, 503, 504, or no response at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(default = "default_base")]
    pub base_ejection_time: PolicyDuration,
    #[serde(default = "default_max")]
    pub max_ejection_time: PolicyDuration,
    #[serde(default = "default_percent")]
    pub max_ejection_percent: u32,
}

fn default_base() -> PolicyDuration {
    DEFAULT_BASE_EJECTION_TIME
}
fn default_max() -> PolicyDuration {
    DEFAULT_MAX_EJECTION_TIME
}
fn default_percent() -> u32 {
    DEFAULT_MAX_EJECTION_PERCENT
}

impl PolicySpec for CircuitBreakerSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        let limits = [
            ("maxConnections", self.max_connections),
            ("maxPendingRequests", self.max_pending_requests),
            ("maxRequests", self.max_requests),
        ];
        if limits.iter().all(|(_, v)| v.is_none()) && self.outlier_detection.is_none() {
            errors.push(
                "",
                "at least one of maxConnections, maxPendingRequests, maxRequests, \
                 outlierDetection is required",
            );
        }
        for (path, value) in limits {
            if value == Some(0) {
                errors.push(path, "must be at least 1");
            }
        }
        let Some(o) = &self.outlier_detection else {
            return;
        };
        if o.consecutive_5xx.is_none() && o.consecutive_gateway_errors.is_none() {
            errors.push(
                "outlierDetection",
                "at least one of consecutive5xx, consecutiveGatewayErrors is required",
            );
        }
        for (path, value) in [
            ("outlierDetection.consecutive5xx", o.consecutive_5xx),
            (
                "outlierDetection.consecutiveGatewayErrors",
                o.consecutive_gateway_errors,
            ),
        ] {
            if value == Some(0) {
                errors.push(path, "must be at least 1");
            }
        }
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(24 * 3600));
        check_range(
            errors,
            "outlierDetection.baseEjectionTime",
            o.base_ejection_time,
            min,
            max,
        );
        check_range(
            errors,
            "outlierDetection.maxEjectionTime",
            o.max_ejection_time,
            min,
            max,
        );
        if o.max_ejection_time < o.base_ejection_time {
            errors.push(
                "outlierDetection.maxEjectionTime",
                "must not be less than baseEjectionTime",
            );
        }
        if o.max_ejection_percent > 100 {
            errors.push(
                "outlierDetection.maxEjectionPercent",
                format!("{} is not a percentage (0-100)", o.max_ejection_percent),
            );
        }
    }
}
