//! Responses the policy layers answer themselves. Like the proxy's other
//! errors they carry `x-weft-error`, so callers can tell a mesh decision
//! (a timeout, an overload, a rate limit, an injected fault) from the
//! service's own answer.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header::RETRY_AFTER};

use crate::http::{ResponseBody, errors::respond};

/// The request timeout expired before a response head came.
pub fn timeout(service: &str, policy: &str, after: Duration) -> Response<ResponseBody> {
    respond(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!("no response from service {service:?} within {after:?} (Timeout {policy:?})\n"),
    )
}

/// A try ran out of its per-try timeout and no retry was left.
pub fn try_timeout(service: &str, policy: &str, after: Duration) -> Response<ResponseBody> {
    respond(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!(
            "no response from service {service:?} within the per-try timeout {after:?} (Retry {policy:?})\n"
        ),
    )
}

/// A circuit-breaker limit is reached: refused at once, not queued.
pub fn overloaded(service: &str, policy: &str, limit: &str, max: u32) -> Response<ResponseBody> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        format!(
            "{limit} to service {service:?} reached its limit of {max} (CircuitBreaker {policy:?})\n"
        ),
    )
}

/// An injected abort.
pub fn fault(policy: &str, status: u16) -> Response<ResponseBody> {
    respond(
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        "fault-injected",
        format!("aborted by FaultInjection {policy:?}\n"),
    )
}

/// Over a RateLimit: 429 with `Retry-After` in whole seconds (at least 1).
pub fn rate_limited(policy: &str, retry_after: Duration) -> Response<ResponseBody> {
    let mut response = respond(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("rate limited by RateLimit {policy:?}\n"),
    );
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The caller's request body could not be read for buffering.
pub fn bad_body(error: &(dyn std::error::Error + 'static)) -> Response<ResponseBody> {
    respond(
        StatusCode::BAD_REQUEST,
        "bad-request",
        format!(
            "cannot read the request body: {}\n",
            crate::http::errors::chain(error)
        ),
    )
}
