//! Parsing the proto's policies into [`super`]'s typed settings, recording
//! every problem with its field path instead of stopping at the first.

use http::{HeaderName, Method, StatusCode};
use weft_api::{
    ValidationErrors, duration::PolicyDuration, policies::load_balancer::LbKind, proto,
};

use super::*;
use crate::authz::config::{parse_header_match, parse_path_match};

/// Records problems under one path prefix.
struct At<'a> {
    path: &'a str,
    errors: &'a mut ValidationErrors,
}

impl At<'_> {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(format!("{}.{field}", self.path), message);
    }

    /// A duration that must be set.
    fn required_ms(&mut self, field: &str, ms: u64) -> PolicyDuration {
        if ms == 0 {
            self.push(field, "must be set (milliseconds above 0)");
        }
        PolicyDuration::from_millis(ms)
    }

    fn positive(&mut self, field: &str, value: u32) -> u32 {
        if value == 0 {
            self.push(field, "must be at least 1");
        }
        value
    }

    fn in_range(&mut self, field: &str, value: u32, min: u32, max: u32) -> u32 {
        if !(min..=max).contains(&value) {
            self.push(field, format!("{value} is not {min}-{max}"));
        }
        value
    }
}

fn optional_ms(ms: u64) -> Option<PolicyDuration> {
    (ms > 0).then(|| PolicyDuration::from_millis(ms))
}

fn optional(value: u32) -> Option<u32> {
    (value > 0).then_some(value)
}

/// Parses an outbound's policies at `path` (`outbounds[i].policies`).
pub fn parse_outbound(
    path: &str,
    msg: proto::OutboundPolicies,
    errors: &mut ValidationErrors,
) -> OutboundPolicies {
    let at = |kind: &str| format!("{path}.{kind}");
    OutboundPolicies {
        timeout: msg.timeout.map(|t| TimeoutConfig {
            name: t.name,
            connect: optional_ms(t.connect_ms),
            request: optional_ms(t.request_ms),
            idle: optional_ms(t.idle_ms),
            stream_idle: optional_ms(t.stream_idle_ms),
        }),
        retry: msg.retry.map(|r| retry(&at("retry"), r, errors)),
        circuit_breaker: msg
            .circuit_breaker
            .map(|c| circuit_breaker(&at("circuit_breaker"), c, errors)),
        health_check: msg
            .health_check
            .map(|h| health_check(&at("health_check"), h, errors)),
        load_balancer: msg
            .load_balancer
            .map(|l| load_balancer(&at("load_balancer"), l, errors)),
        fault_injection: msg
            .fault_injection
            .map(|f| fault(&at("fault_injection"), f, errors)),
        traffic_route: msg
            .traffic_route
            .map(|r| route(&at("traffic_route"), r, errors)),
    }
}

fn retry(path: &str, r: proto::RetryPolicy, errors: &mut ValidationErrors) -> RetryConfig {
    let mut at = At { path, errors };
    let mut on = [false; 4];
    for (i, c) in r.retry_on.iter().enumerate() {
        match proto::RetryOn::try_from(*c) {
            Ok(proto::RetryOn::ConnectFailure) => on[0] = true,
            Ok(proto::RetryOn::Reset) => on[1] = true,
            Ok(proto::RetryOn::RetryOn5xx) => on[2] = true,
            Ok(proto::RetryOn::GatewayError) => on[3] = true,
            _ => at.push(
                &format!("retry_on[{i}]"),
                format!("{c} is not a retry condition"),
            ),
        }
    }
    for (i, code) in r.grpc_status_codes.iter().enumerate() {
        if !(1..=16).contains(code) {
            at.push(
                &format!("grpc_status_codes[{i}]"),
                format!("{code} is not a gRPC status code (1-16)"),
            );
        }
    }
    let base = PolicyDuration::from_millis(r.backoff_base_ms);
    let max = PolicyDuration::from_millis(r.backoff_max_ms);
    if max < base {
        at.push("backoff_max_ms", "must not be less than backoff_base_ms");
    }
    RetryConfig {
        attempts: at.in_range(
            "attempts",
            r.attempts,
            1,
            weft_api::policies::retry::MAX_ATTEMPTS,
        ),
        budget_percent: at.in_range("budget_percent", r.budget_percent, 1, 100),
        buffer_limit_bytes: at.in_range(
            "buffer_limit_bytes",
            r.buffer_limit_bytes,
            0,
            weft_api::policies::retry::MAX_BUFFER_LIMIT,
        ),
        name: r.name,
        per_try_timeout: optional_ms(r.per_try_timeout_ms),
        on_connect_failure: on[0],
        on_reset: on[1],
        on_5xx: on[2],
        on_gateway_error: on[3],
        grpc_status_codes: r.grpc_status_codes,
        allow_non_idempotent: r.allow_non_idempotent,
        budget_min_retries_per_second: r.budget_min_retries_per_second,
        backoff_base: base,
        backoff_max: max,
    }
}

fn circuit_breaker(
    path: &str,
    c: proto::CircuitBreakerPolicy,
    errors: &mut ValidationErrors,
) -> CircuitBreakerConfig {
    let mut at = At { path, errors };
    let outlier_detection = c.outlier_detection.map(|o| {
        let base = at.required_ms(
            "outlier_detection.base_ejection_time_ms",
            o.base_ejection_time_ms,
        );
        let max = at.required_ms(
            "outlier_detection.max_ejection_time_ms",
            o.max_ejection_time_ms,
        );
        if o.consecutive_5xx == 0 && o.consecutive_gateway_errors == 0 {
            at.push(
                "outlier_detection",
                "one of consecutive_5xx, consecutive_gateway_errors must be set",
            );
        }
        OutlierConfig {
            consecutive_5xx: optional(o.consecutive_5xx),
            consecutive_gateway_errors: optional(o.consecutive_gateway_errors),
            base_ejection_time: base,
            max_ejection_time: max,
            max_ejection_percent: at.in_range(
                "outlier_detection.max_ejection_percent",
                o.max_ejection_percent,
                0,
                100,
            ),
        }
    });
    CircuitBreakerConfig {
        name: c.name,
        max_connections: optional(c.max_connections),
        max_pending_requests: optional(c.max_pending_requests),
        max_requests: optional(c.max_requests),
        outlier_detection,
    }
}

fn health_check(
    path: &str,
    h: proto::HealthCheckPolicy,
    errors: &mut ValidationErrors,
) -> HealthCheckConfig {
    use proto::health_check_policy::Probe as P;
    let mut at = At { path, errors };
    let probe = match h.probe {
        Some(P::Http(http)) => {
            if !http.path.starts_with('/') {
                at.push("http.path", format!("{:?} must start with '/'", http.path));
            }
            let expected_statuses = http
                .expected_statuses
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match u16::try_from(*s) {
                    Ok(s) if (100..=599).contains(&s) => Some(s),
                    _ => {
                        at.push(
                            &format!("http.expected_statuses[{i}]"),
                            format!("{s} is not an HTTP status"),
                        );
                        None
                    }
                })
                .collect();
            Probe::Http {
                path: http.path,
                expected_statuses,
            }
        }
        Some(P::Tcp(_)) => Probe::Tcp,
        Some(P::Grpc(g)) => Probe::Grpc { service: g.service },
        None => {
            at.push("probe", "one of http, tcp, grpc is required");
            Probe::Tcp
        }
    };
    HealthCheckConfig {
        interval: at.required_ms("interval_ms", h.interval_ms),
        timeout: at.required_ms("timeout_ms", h.timeout_ms),
        healthy_threshold: at.in_range("healthy_threshold", h.healthy_threshold, 1, 100),
        unhealthy_threshold: at.in_range("unhealthy_threshold", h.unhealthy_threshold, 1, 100),
        name: h.name,
        probe,
    }
}

fn load_balancer(
    path: &str,
    l: proto::LoadBalancerPolicy,
    errors: &mut ValidationErrors,
) -> LoadBalancerConfig {
    use proto::load_balancer_policy::HashOn as H;
    let mut at = At { path, errors };
    let kind = match proto::LbType::try_from(l.r#type) {
        Ok(proto::LbType::LbRoundRobin) => LbKind::RoundRobin,
        Ok(proto::LbType::LbLeastRequest) => LbKind::LeastRequest,
        Ok(proto::LbType::LbRingHash) => LbKind::RingHash,
        Ok(proto::LbType::LbRandom) => LbKind::Random,
        Err(_) => {
            at.push(
                "type",
                format!("{} is not a load balancer type (0-3)", l.r#type),
            );
            LbKind::RoundRobin
        }
    };
    let hash_on = match l.hash_on {
        Some(H::Header(name)) => match HeaderName::try_from(name.as_str()) {
            Ok(h) => Some(HashOn::Header(h)),
            Err(_) => {
                at.push("header", format!("{name:?} is not a header name"));
                None
            }
        },
        Some(H::Cookie(name)) if !name.is_empty() => Some(HashOn::Cookie(name)),
        Some(H::Cookie(_)) => {
            at.push("cookie", "must not be empty");
            None
        }
        Some(H::SourceAddress(true)) => Some(HashOn::SourceAddress),
        Some(H::SourceAddress(false)) | None => None,
    };
    if kind == LbKind::RingHash && hash_on.is_none() {
        at.push("hash_on", "required with LB_RING_HASH");
    }
    LoadBalancerConfig {
        name: l.name,
        kind,
        hash_on,
    }
}

fn fault(path: &str, f: proto::FaultInjectionPolicy, errors: &mut ValidationErrors) -> FaultConfig {
    let mut at = At { path, errors };
    let million = weft_api::duration::Percent::MILLION;
    let abort_ppm = at.in_range("abort_ppm", f.abort_ppm, 0, million);
    let delay_ppm = at.in_range("delay_ppm", f.delay_ppm, 0, million);
    let abort = (abort_ppm > 0).then(|| {
        let status = u16::try_from(f.abort_http_status)
            .ok()
            .filter(|s| StatusCode::from_u16(*s).is_ok() && *s >= 200);
        if status.is_none() {
            at.push(
                "abort_http_status",
                format!("{} is not an HTTP status (200-599)", f.abort_http_status),
            );
        }
        (abort_ppm, status.unwrap_or(503))
    });
    let delay = (delay_ppm > 0).then(|| (delay_ppm, at.required_ms("delay_ms", f.delay_ms)));
    FaultConfig {
        name: f.name,
        abort,
        delay,
    }
}

fn route(path: &str, r: proto::TrafficRoutePolicy, errors: &mut ValidationErrors) -> RouteConfig {
    let rules = r
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let path = format!("{path}.rules[{i}]");
            let method = (!rule.method.is_empty()).then(|| {
                Method::from_bytes(rule.method.as_bytes()).unwrap_or_else(|_| {
                    errors.push(
                        format!("{path}.method"),
                        format!("{:?} is not a method", rule.method),
                    );
                    Method::GET
                })
            });
            let path_match = rule
                .path
                .and_then(|p| parse_path_match(&format!("{path}.path"), p, errors));
            let headers = rule
                .headers
                .into_iter()
                .enumerate()
                .filter_map(|(j, h)| parse_header_match(&format!("{path}.headers[{j}]"), h, errors))
                .collect();
            if rule.split.iter().all(|s| s.weight == 0) {
                errors.push(
                    format!("{path}.split"),
                    "needs a destination with a weight above 0",
                );
            }
            RouteRuleConfig {
                path: path_match,
                method,
                headers,
                split: rule
                    .split
                    .into_iter()
                    .map(|s| SplitConfig {
                        weight: s.weight,
                        tags: s.tags.into_iter().collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    RouteConfig {
        name: r.name,
        rules,
    }
}

/// Parses an inbound's rate limits at `path` (`inbounds[i].rate_limits[j]`).
pub fn parse_rate_limit(
    path: &str,
    r: proto::RateLimitPolicy,
    errors: &mut ValidationErrors,
) -> RateLimitConfig {
    let mut at = At { path, errors };
    RateLimitConfig {
        requests: at.positive("requests", r.requests),
        interval: at.required_ms("interval_ms", r.interval_ms),
        burst: at.positive("burst", r.burst),
        name: r.name,
        from_service: Some(r.from_service).filter(|s| !s.is_empty()),
    }
}
