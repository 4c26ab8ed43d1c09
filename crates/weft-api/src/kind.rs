//! The kinds of resources Weft stores.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A resource kind. Every kind but `Mesh` lives inside one mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Mesh,
    Dataplane,
    TrafficPermission,
    Timeout,
    Retry,
    CircuitBreaker,
    HealthCheck,
    LoadBalancer,
    RateLimit,
    FaultInjection,
    TrafficRoute,
    Tracing,
    AccessLog,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Mesh,
        Kind::Dataplane,
        Kind::TrafficPermission,
        Kind::Timeout,
        Kind::Retry,
        Kind::CircuitBreaker,
        Kind::HealthCheck,
        Kind::LoadBalancer,
        Kind::RateLimit,
        Kind::FaultInjection,
        Kind::TrafficRoute,
        Kind::Tracing,
        Kind::AccessLog,
    ];

    /// The `type:` value in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mesh => "Mesh",
            Kind::Dataplane => "Dataplane",
            Kind::TrafficPermission => "TrafficPermission",
            Kind::Timeout => "Timeout",
            Kind::Retry => "Retry",
            Kind::CircuitBreaker => "CircuitBreaker",
            Kind::HealthCheck => "HealthCheck",
            Kind::LoadBalancer => "LoadBalancer",
            Kind::RateLimit => "RateLimit",
            Kind::FaultInjection => "FaultInjection",
            Kind::TrafficRoute => "TrafficRoute",
            Kind::Tracing => "Tracing",
            Kind::AccessLog => "AccessLog",
        }
    }

    /// The plural used in REST paths and `weft get`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Mesh => "meshes",
            Kind::Dataplane => "dataplanes",
            Kind::TrafficPermission => "traffic-permissions",
            Kind::Timeout => "timeouts",
            Kind::Retry => "retries",
            Kind::CircuitBreaker => "circuit-breakers",
            Kind::HealthCheck => "health-checks",
            Kind::LoadBalancer => "load-balancers",
            Kind::RateLimit => "rate-limits",
            Kind::FaultInjection => "fault-injections",
            Kind::TrafficRoute => "traffic-routes",
            Kind::Tracing => "tracings",
            Kind::AccessLog => "access-logs",
        }
    }

    /// Whether this kind is a policy (`Policy<Spec>`): stored with its mesh
    /// and deleted with it.
    pub fn is_policy(self) -> bool {
        !matches!(self, Kind::Mesh | Kind::Dataplane)
    }

    /// Whether resources of this kind belong to a mesh.
    pub fn is_mesh_scoped(self) -> bool {
        !matches!(self, Kind::Mesh)
    }

    /// Parses the plural used in REST paths.
    pub fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts the type name, its plural and common CLI spellings, case-insensitively.
impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mesh" | "meshes" => Ok(Kind::Mesh),
            "dataplane" | "dataplanes" | "dp" | "dps" => Ok(Kind::Dataplane),
            "trafficpermission"
            | "trafficpermissions"
            | "traffic-permission"
            | "traffic-permissions"
            | "tp" => Ok(Kind::TrafficPermission),
            "timeout" | "timeouts" => Ok(Kind::Timeout),
            "retry" | "retries" => Ok(Kind::Retry),
            "circuitbreaker" | "circuitbreakers" | "circuit-breaker" | "circuit-breakers"
            | "cb" => Ok(Kind::CircuitBreaker),
            "healthcheck" | "healthchecks" | "health-check" | "health-checks" | "hc" => {
                Ok(Kind::HealthCheck)
            }
            "loadbalancer" | "loadbalancers" | "load-balancer" | "load-balancers" | "lb" => {
                Ok(Kind::LoadBalancer)
            }
            "ratelimit" | "ratelimits" | "rate-limit" | "rate-limits" | "rl" => Ok(Kind::RateLimit),
            "faultinjection" | "faultinjections" | "fault-injection" | "fault-injections"
            | "fi" => Ok(Kind::FaultInjection),
            "trafficroute" | "trafficroutes" | "traffic-route" | "traffic-routes" | "tr" => {
                Ok(Kind::TrafficRoute)
            }
            "tracing" | "tracings" => Ok(Kind::Tracing),
            "accesslog" | "accesslogs" | "access-log" | "access-logs" | "al" => Ok(Kind::AccessLog),
            other => Err(format!(
                "unknown kind {other:?} (expected one of: {})",
                Kind::ALL.map(Kind::plural).join(", ")
            )),
        }
    }
}
