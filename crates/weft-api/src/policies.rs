//! The traffic policy kinds: reliability (Timeout, Retry, CircuitBreaker,
//! HealthCheck), balancing (LoadBalancer, TrafficRoute), protection
//! (RateLimit), chaos testing (FaultInjection) and observability (Tracing,
//! AccessLog). Each is a
//! [`crate::policy::Policy`] around its own spec, selected by the shared
//! engine in [`crate::policy::select`].
//!
//! Where each applies (see `docs/architecture.md`): every kind but
//! RateLimit is resolved per outbound of the calling proxy, for the pair
//! (caller's service, destination service); RateLimit is enforced by the
//! destination's inbound, so that one bucket guards the destination
//! whoever calls it. Tracing is a setting of a whole proxy, chosen by its
//! own services; AccessLog is resolved per outbound and per inbound.

pub mod access_log;
pub mod circuit_breaker;
pub mod fault_injection;
pub mod health_check;
pub mod load_balancer;
pub mod rate_limit;
pub mod retry;
pub mod timeout;
pub mod tracing;
pub mod traffic_route;

pub use access_log::{AccessLog, AccessLogSpec};
pub use circuit_breaker::{CircuitBreaker, CircuitBreakerSpec};
pub use fault_injection::{FaultInjection, FaultInjectionSpec};
pub use health_check::{HealthCheck, HealthCheckSpec};
pub use load_balancer::{LoadBalancer, LoadBalancerSpec};
pub use rate_limit::{RateLimit, RateLimitSpec};
pub use retry::{Retry, RetrySpec};
pub use timeout::{Timeout, TimeoutSpec};
pub use tracing::{Tracing, TracingSpec};
pub use traffic_route::{TrafficRoute, TrafficRouteSpec};

#[cfg(test)]
mod tests;
