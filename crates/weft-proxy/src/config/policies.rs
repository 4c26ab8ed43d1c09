//! Traffic policies as the proxy runs them, parsed from the proto once with
//! every field checked (a bad value NACKs the config and names its field,
//! e.g. `outbounds[0].policies.retry.attempts: 0 is not 1-10`).

use std::collections::BTreeMap;

use http::{HeaderName, Method};
use serde::Serialize;
use weft_api::{duration::PolicyDuration, policies::load_balancer::LbKind};

use crate::authz::config::{HeaderMatch, PathMatch};

mod parse;

pub use parse::{parse_outbound, parse_rate_limit};

/// One policy of each kind for an outbound; all `None` is the common case
/// and costs the request path nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundPolicies {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<FaultConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_route: Option<RouteConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    pub name: String,
    pub connect: Option<PolicyDuration>,
    pub request: Option<PolicyDuration>,
    pub idle: Option<PolicyDuration>,
    pub stream_idle: Option<PolicyDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    pub name: String,
    pub attempts: u32,
    pub per_try_timeout: Option<PolicyDuration>,
    pub on_connect_failure: bool,
    pub on_reset: bool,
    pub on_5xx: bool,
    pub on_gateway_error: bool,
    pub grpc_status_codes: Vec<u32>,
    pub allow_non_idempotent: bool,
    pub budget_percent: u32,
    pub budget_min_retries_per_second: u32,
    pub backoff_base: PolicyDuration,
    pub backoff_max: PolicyDuration,
    pub buffer_limit_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakerConfig {
    pub name: String,
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub outlier_detection: Option<OutlierConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierConfig {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub base_ejection_time: PolicyDuration,
    pub max_ejection_time: PolicyDuration,
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    pub name: String,
    pub interval: PolicyDuration,
    pub timeout: PolicyDuration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Probe {
    Http {
        path: String,
        /// Empty: any 2xx.
        expected_statuses: Vec<u16>,
    },
    Tcp,
    Grpc {
        service: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfig {
    pub name: String,
    pub kind: LbKind,
    pub hash_on: Option<HashOn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HashOn {
    Header(#[serde(serialize_with = "header_name")] HeaderName),
    Cookie(String),
    SourceAddress,
}

fn header_name<S: serde::Serializer>(name: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    pub name: String,
    /// Share in parts per million, and the status answered.
    pub abort: Option<(u32, u16)>,
    /// Share in parts per million, and the delay.
    pub delay: Option<(u32, PolicyDuration)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    pub name: String,
    pub rules: Vec<RouteRuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRuleConfig {
    pub path: Option<PathMatch>,
    #[serde(serialize_with = "method")]
    pub method: Option<Method>,
    pub headers: Vec<HeaderMatch>,
    pub split: Vec<SplitConfig>,
}

fn method<S: serde::Serializer>(m: &Option<Method>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_some(m.as_str()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitConfig {
    pub weight: u32,
    pub tags: BTreeMap<String, String>,
}

/// A RateLimit of an inbound, in the order the control plane ranked them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitConfig {
    pub name: String,
    /// `None`: any caller.
    pub from_service: Option<String>,
    pub requests: u32,
    pub interval: PolicyDuration,
    pub burst: u32,
}
