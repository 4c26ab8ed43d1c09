//! Traffic policies in the data path: one module per concern, composed for
//! HTTP in `http` and for TCP in `tcp`, and the inbound's `rate_limit`.
//!
//! * `endpoints`, `destination`: the destination's endpoints and what is
//!   known about each (health, ejection, load), swapped without locks;
//! * `lb`: round robin, least request, ring hash, random;
//! * `route`: TrafficRoute subsets; `fault`: FaultInjection;
//! * `limits` and `outlier`: CircuitBreaker; `health`: HealthCheck;
//! * `retry`: Retry conditions, budget and backoff; `replay`: the request
//!   kept for retries; `body`: the response
//!   body that holds limits and enforces timeouts while it streams;
//! * `idle`: the TCP idle timeout; `responses`: the answers the layers make;
//!   `stats`: what they did, for `/metrics`.
//!
//! An outbound without policies never enters this module.

pub mod body;
pub mod destination;
pub mod endpoints;
pub mod fault;
pub mod health;
pub mod http;
pub mod idle;
pub mod lb;
pub mod limits;
pub mod outlier;
pub mod rate_limit;
pub mod replay;
pub mod responses;
pub mod retry;
pub mod route;
pub mod stats;
pub mod tcp;
