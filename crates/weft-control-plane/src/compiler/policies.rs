//! Traffic policies compiled per listener. For each outbound, the selector
//! engine picks one policy of each kind for the pair (this Dataplane's
//! services as the caller, the destination service's tags); each inbound
//! gets its RateLimits ranked, like its permissions, since the caller is
//! only known to the proxy.

use std::collections::BTreeMap;

use weft_api::{
    Dataplane, Resource, TrafficPermission,
    dataplane::{Inbound, SERVICE_TAG},
    policies::{
        AccessLog, CircuitBreaker, FaultInjection, HealthCheck, LoadBalancer, RateLimit, Retry,
        Timeout, Tracing, TrafficRoute, load_balancer::LbKind, retry::RetryOn,
    },
    policy::{Policy, Selector, precedence, select, sort_by_precedence},
    proto,
};

use super::permissions;

/// Every policy of one mesh, by kind.
#[derive(Debug, Clone, Default)]
pub struct MeshPolicies {
    pub permissions: Vec<TrafficPermission>,
    pub timeouts: Vec<Timeout>,
    pub retries: Vec<Retry>,
    pub circuit_breakers: Vec<CircuitBreaker>,
    pub health_checks: Vec<HealthCheck>,
    pub load_balancers: Vec<LoadBalancer>,
    pub rate_limits: Vec<RateLimit>,
    pub fault_injections: Vec<FaultInjection>,
    pub traffic_routes: Vec<TrafficRoute>,
    pub tracings: Vec<Tracing>,
    pub access_logs: Vec<AccessLog>,
}

impl MeshPolicies {
    /// Files a policy under its kind; other resources are ignored.
    pub fn add(&mut self, resource: Resource) {
        match resource {
            Resource::TrafficPermission(p) => self.permissions.push(p),
            Resource::Timeout(p) => self.timeouts.push(p),
            Resource::Retry(p) => self.retries.push(p),
            Resource::CircuitBreaker(p) => self.circuit_breakers.push(p),
            Resource::HealthCheck(p) => self.health_checks.push(p),
            Resource::LoadBalancer(p) => self.load_balancers.push(p),
            Resource::RateLimit(p) => self.rate_limits.push(p),
            Resource::FaultInjection(p) => self.fault_injections.push(p),
            Resource::TrafficRoute(p) => self.traffic_routes.push(p),
            Resource::Tracing(p) => self.tracings.push(p),
            Resource::AccessLog(p) => self.access_logs.push(p),
            Resource::Mesh(_) | Resource::Dataplane(_) => {}
        }
    }

    /// The policies for `dataplane` calling `service`; `None` when no kind
    /// has one, so outbounds without policies stay as small as before.
    pub fn for_outbound(
        &self,
        dataplane: &Dataplane,
        service: &str,
        mesh_dataplanes: &[Dataplane],
    ) -> Option<proto::OutboundPolicies> {
        let sources = caller_sources(dataplane);
        let destination = destination_tags(service, mesh_dataplanes);
        let pick = Pick {
            sources: &sources,
            destination: &destination,
        };
        let policies = proto::OutboundPolicies {
            timeout: pick.one(&self.timeouts).map(timeout),
            retry: pick.one(&self.retries).map(retry),
            circuit_breaker: pick.one(&self.circuit_breakers).map(circuit_breaker),
            health_check: pick.one(&self.health_checks).map(health_check),
            load_balancer: pick.one(&self.load_balancers).map(load_balancer),
            fault_injection: pick.one(&self.fault_injections).map(fault_injection),
            traffic_route: pick.one(&self.traffic_routes).map(traffic_route),
        };
        (policies != proto::OutboundPolicies::default()).then_some(policies)
    }

    /// The RateLimits whose `to` selects `inbound`, most specific first.
    pub fn rate_limits_for(&self, inbound: &Inbound) -> Vec<proto::RateLimitPolicy> {
        selecting_inbound(&self.rate_limits, inbound)
            .into_iter()
            .map(|p| proto::RateLimitPolicy {
                name: p.name.clone(),
                from_service: p.selector.from_service().unwrap_or_default().to_owned(),
                requests: p.spec.requests,
                interval_ms: p.spec.interval.as_millis(),
                burst: p.spec.burst(),
            })
            .collect()
    }

    pub fn permissions_for(&self, inbound: &Inbound) -> Vec<proto::Permission> {
        permissions::for_inbound(inbound, &self.permissions)
    }
}

/// The caller's possible source tags: one per service the Dataplane serves,
/// and none (for policies whose `from` matches anyone).
/// The policies whose `to` selects `inbound`, most specific first; their
/// `from` is left for the proxy to match against each caller.
pub(super) fn selecting_inbound<'a, Spec>(
    policies: &'a [Policy<Spec>],
    inbound: &Inbound,
) -> Vec<&'a Policy<Spec>> {
    let mut applicable: Vec<&Policy<Spec>> = policies
        .iter()
        .filter(|p| {
            Selector {
                from: BTreeMap::new(),
                to: p.selector.to.clone(),
            }
            .matches(&BTreeMap::new(), &inbound.tags)
        })
        .collect();
    sort_by_precedence(&mut applicable);
    applicable
}

pub(super) fn caller_sources(dataplane: &Dataplane) -> Vec<BTreeMap<String, String>> {
    dataplane
        .networking
        .inbound
        .iter()
        .map(|i| BTreeMap::from([(SERVICE_TAG.to_owned(), i.service().to_owned())]))
        .chain(std::iter::once(BTreeMap::new()))
        .collect()
}

/// The tags every inbound serving `service` has (registered ones, online or
/// not): what a `to` selector can rely on for the service as a whole.
pub(super) fn destination_tags(
    service: &str,
    dataplanes: &[Dataplane],
) -> BTreeMap<String, String> {
    let mut serving = dataplanes
        .iter()
        .flat_map(|d| d.networking.inbound.iter())
        .filter(|i| i.service() == service);
    let Some(first) = serving.next() else {
        return BTreeMap::from([(SERVICE_TAG.to_owned(), service.to_owned())]);
    };
    let mut common = first.tags.clone();
    for inbound in serving {
        common.retain(|k, v| inbound.tags.get(k) == Some(v));
    }
    common
}

/// The caller's possible source tags (one per service it serves, and none
/// for callers known only by "anyone") and the destination's tags.
pub(super) struct Pick<'a> {
    pub(super) sources: &'a [BTreeMap<String, String>],
    pub(super) destination: &'a BTreeMap<String, String>,
}

impl Pick<'_> {
    /// The winning policy over all the caller's services.
    pub(super) fn one<'p, S>(&self, policies: &'p [Policy<S>]) -> Option<&'p Policy<S>> {
        self.sources
            .iter()
            .filter_map(|source| select(policies, source, self.destination))
            .min_by(|a, b| precedence(a, b))
    }
}

fn timeout(p: &Timeout) -> proto::TimeoutPolicy {
    let ms = |d: Option<weft_api::duration::PolicyDuration>| d.map_or(0, |d| d.as_millis());
    proto::TimeoutPolicy {
        name: p.name.clone(),
        connect_ms: ms(p.spec.connect),
        request_ms: ms(p.spec.request),
        idle_ms: ms(p.spec.idle),
        stream_idle_ms: ms(p.spec.stream_idle),
    }
}

fn retry(p: &Retry) -> proto::RetryPolicy {
    let s = &p.spec;
    let budget = s
        .budget
        .clone()
        .unwrap_or(weft_api::policies::retry::RetryBudget {
            percent: weft_api::policies::retry::DEFAULT_BUDGET_PERCENT,
            min_retries_per_second: weft_api::policies::retry::DEFAULT_MIN_RETRIES_PER_SECOND,
        });
    let (base, max) = s.backoff.as_ref().map_or(
        (
            weft_api::policies::retry::DEFAULT_BACKOFF_BASE,
            weft_api::policies::retry::DEFAULT_BACKOFF_MAX,
        ),
        |b| (b.base, b.max),
    );
    proto::RetryPolicy {
        name: p.name.clone(),
        attempts: s.attempts,
        per_try_timeout_ms: s.per_try_timeout.map_or(0, |d| d.as_millis()),
        retry_on: s
            .conditions()
            .iter()
            .map(|c| {
                i32::from(match c {
                    RetryOn::ConnectFailure => proto::RetryOn::ConnectFailure,
                    RetryOn::Reset => proto::RetryOn::Reset,
                    RetryOn::ServerError => proto::RetryOn::RetryOn5xx,
                    RetryOn::GatewayError => proto::RetryOn::GatewayError,
                })
            })
            .collect(),
        grpc_status_codes: s.grpc_status_codes.iter().map(|c| c.0).collect(),
        allow_non_idempotent: s.allow_non_idempotent,
        budget_percent: budget.percent,
        budget_min_retries_per_second: budget.min_retries_per_second,
        backoff_base_ms: base.as_millis(),
        backoff_max_ms: max.as_millis(),
        buffer_limit_bytes: s
            .buffer_limit_bytes
            .unwrap_or(weft_api::policies::retry::DEFAULT_BUFFER_LIMIT),
    }
}

fn circuit_breaker(p: &CircuitBreaker) -> proto::CircuitBreakerPolicy {
    let s = &p.spec;
    proto::CircuitBreakerPolicy {
        name: p.name.clone(),
        max_connections: s.max_connections.unwrap_or(0),
        max_pending_requests: s.max_pending_requests.unwrap_or(0),
        max_requests: s.max_requests.unwrap_or(0),
        outlier_detection: s
            .outlier_detection
            .as_ref()
            .map(|o| proto::OutlierDetection {
                consecutive_5xx: o.consecutive_5xx.unwrap_or(0),
                consecutive_gateway_errors: o.consecutive_gateway_errors.unwrap_or(0),
                base_ejection_time_ms: o.base_ejection_time.as_millis(),
                max_ejection_time_ms: o.max_ejection_time.as_millis(),
                max_ejection_percent: o.max_ejection_percent,
            }),
    }
}

fn health_check(p: &HealthCheck) -> proto::HealthCheckPolicy {
    use proto::health_check_policy::Probe;
    let s = &p.spec;
    let probe = match (&s.http, &s.grpc) {
        (Some(http), _) => Probe::Http(proto::HttpProbe {
            path: http.path.clone(),
            expected_statuses: http
                .expected_statuses
                .iter()
                .map(|s| u32::from(*s))
                .collect(),
        }),
        (None, Some(grpc)) => Probe::Grpc(proto::GrpcProbe {
            service: grpc.service.clone(),
        }),
        (None, None) => Probe::Tcp(proto::TcpProbe {}),
    };
    proto::HealthCheckPolicy {
        name: p.name.clone(),
        interval_ms: s.interval.as_millis(),
        timeout_ms: s.timeout.as_millis(),
        healthy_threshold: s.healthy_threshold,
        unhealthy_threshold: s.unhealthy_threshold,
        probe: Some(probe),
    }
}

fn load_balancer(p: &LoadBalancer) -> proto::LoadBalancerPolicy {
    use proto::load_balancer_policy::HashOn;
    let kind = match p.spec.kind {
        LbKind::RoundRobin => proto::LbType::LbRoundRobin,
        LbKind::LeastRequest => proto::LbType::LbLeastRequest,
        LbKind::RingHash => proto::LbType::LbRingHash,
        LbKind::Random => proto::LbType::LbRandom,
    };
    let hash_on = p
        .spec
        .hash_on
        .as_ref()
        .and_then(|h| match (&h.header, &h.cookie) {
            (Some(name), _) => Some(HashOn::Header(name.to_ascii_lowercase())),
            (None, Some(name)) => Some(HashOn::Cookie(name.clone())),
            (None, None) => h.source_address.then_some(HashOn::SourceAddress(true)),
        });
    proto::LoadBalancerPolicy {
        name: p.name.clone(),
        r#type: kind.into(),
        hash_on,
    }
}

fn fault_injection(p: &FaultInjection) -> proto::FaultInjectionPolicy {
    let s = &p.spec;
    proto::FaultInjectionPolicy {
        name: p.name.clone(),
        abort_ppm: s.abort.as_ref().map_or(0, |a| a.percentage.ppm()),
        abort_http_status: s.abort.as_ref().map_or(0, |a| u32::from(a.http_status)),
        delay_ppm: s.delay.as_ref().map_or(0, |d| d.percentage.ppm()),
        delay_ms: s.delay.as_ref().map_or(0, |d| d.value.as_millis()),
    }
}

fn traffic_route(p: &TrafficRoute) -> proto::TrafficRoutePolicy {
    proto::TrafficRoutePolicy {
        name: p.name.clone(),
        rules: p
            .spec
            .rules
            .iter()
            .map(|rule| {
                let m = rule.matches.clone().unwrap_or_default();
                proto::RouteRule {
                    path: m.path.as_ref().map(permissions::path_to_proto),
                    method: m.method.clone().unwrap_or_default(),
                    headers: m.headers.iter().map(permissions::header_to_proto).collect(),
                    split: rule
                        .split
                        .iter()
                        .map(|s| proto::RouteSplit {
                            weight: s.weight,
                            tags: s.tags.clone().into_iter().collect(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}
