//! `HealthCheck`: active probes from the calling proxy to each endpoint
//! (HTTP, TCP or gRPC); an endpoint that fails `unhealthyThreshold` probes
//! in a row leaves rotation until it passes `healthyThreshold` in a row.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{PolicyDuration, check_range},
    policy::{Policy, PolicySpec},
};

pub type HealthCheck = Policy<HealthCheckSpec>;

pub const DEFAULT_TIMEOUT: PolicyDuration = PolicyDuration::from_millis(1000);
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 1;
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSpec {
    pub interval: PolicyDuration,
    #[serde(default = "default_timeout")]
    pub timeout: PolicyDuration,
    #[serde(default = "default_healthy")]
    pub healthy_threshold: u32,
    #[serde(default = "default_unhealthy")]
    pub unhealthy_threshold: u32,
    /// Exactly one of `http`, `tcp`, `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcProbe>,
}

/// `GET path`; healthy when the status is one of `expectedStatuses`
/// (default: any 2xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<u16>,
}

/// Healthy when a connection (with mTLS when it is on) can be made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {}

/// `grpc.health.v1.Health/Check` for `service` (empty: the server as a
/// whole); healthy when the answer is SERVING.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbe {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
}

fn default_timeout() -> PolicyDuration {
    DEFAULT_TIMEOUT
}
fn default_healthy() -> u32 {
    DEFAULT_HEALTHY_THRESHOLD
}
fn default_unhealthy() -> u32 {
    DEFAULT_UNHEALTHY_THRESHOLD
}

impl PolicySpec for HealthCheckSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        let hour = Duration::from_secs(3600);
        check_range(
            errors,
            "interval",
            self.interval,
            Duration::from_millis(100),
            hour,
        );
        check_range(
            errors,
            "timeout",
            self.timeout,
            Duration::from_millis(10),
            hour,
        );
        for (path, value) in [
            ("healthyThreshold", self.healthy_threshold),
            ("unhealthyThreshold", self.unhealthy_threshold),
        ] {
            if !(1..=100).contains(&value) {
                errors.push(path, format!("{value} is not 1-100"));
            }
        }
        let kinds = [self.http.is_some(), self.tcp.is_some(), self.grpc.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            errors.push("", "exactly one of http, tcp, grpc is required");
        }
        if let Some(http) = &self.http {
            if !http.path.starts_with('/') {
                errors.push("http.path", format!("{:?} must start with '/'", http.path));
            }
            for (i, s) in http.expected_statuses.iter().enumerate() {
                if !(100..=599).contains(s) {
                    errors.push(
                        format!("http.expectedStatuses[{i}]"),
                        format!("{s} is not an HTTP status (100-599)"),
                    );
                }
            }
        }
    }
}
