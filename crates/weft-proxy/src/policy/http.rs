//! The HTTP outbound with policies, composed in one place from the outside
//! in: fault injection → circuit-breaker request limit → request timeout →
//! route (TrafficRoute subset) → retry loop (budget, backoff, per-try
//! timeout, pending-request limit) → balancer over the endpoints that are
//! healthy and not ejected → pooled client. The response body keeps the
//! limits and timeouts until it ends (`body`).
//!
//! Only outbounds that have a policy come here; the others keep the plain
//! path in `outbound`, which costs nothing extra.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{Request, Response, request::Parts};
use http_body_util::Either;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{
    body::{Guard, Guarded},
    destination::Destination,
    endpoints::{Endpoint, Snapshot},
    fault, health,
    outlier::Outcome,
    replay::{Body, buffer, rebuild},
    responses,
    retry::{self, Budget, Failure},
    route,
    stats::{Event, PolicyStats},
};
use crate::{
    config::{
        EndpointConfig,
        policies::{OutboundPolicies, RetryConfig},
    },
    drain::Watch,
    http::{
        RequestBody, ResponseBody, UpstreamBody,
        buffered::Buffered,
        client::Upstream,
        errors,
        forward::{self, ForwardError, Reached},
        headers, upgrade,
    },
    observe::{CallerBody, Retries},
    outbound::MAX_ATTEMPTS,
    tls::client::PeerTls,
};

/// What the outbound answers: the plain path's body, or a guarded one.
pub type OutboundBody = Either<ResponseBody, Guarded>;

/// An HTTP outbound's policies and the state they keep.
#[derive(Debug)]
pub struct HttpPolicies {
    config: OutboundPolicies,
    destination: Destination<Upstream>,
    budget: Option<Budget>,
    http2: bool,
    tls: PeerTls,
}

impl HttpPolicies {
    pub fn new(
        service: &str,
        config: &OutboundPolicies,
        http2: bool,
        tls: PeerTls,
        stats: Arc<PolicyStats>,
    ) -> Arc<Self> {
        let mut destination = Destination::new(service, config, stats.clone());
        if let Some(check) = &config.health_check {
            destination.checker = Some(health::spawn(
                check.clone(),
                Arc::downgrade(&destination.endpoints),
                health::http_prober(check, tls.clone()),
                (stats, service.to_owned()),
            ));
        }
        Arc::new(Self {
            budget: config
                .retry
                .as_ref()
                .map(|r| Budget::new(r.budget_percent, r.budget_min_retries_per_second)),
            config: config.clone(),
            destination,
            http2,
            tls,
        })
    }

    pub fn update(&self, endpoints: &[EndpointConfig]) {
        let connect = self
            .config
            .timeout
            .as_ref()
            .and_then(|t| t.connect)
            .map(|d| d.get());
        self.destination.update(endpoints, |addr| {
            Upstream::peer_with_connect_timeout(addr, self.http2, self.tls.clone(), connect)
        });
    }

    /// The Timeout's `idle`, for the app's connections.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.config
            .timeout
            .as_ref()
            .and_then(|t| t.idle)
            .map(|d| d.get())
    }

    /// A slot for one more app connection, or `Err` when the circuit
    /// breaker's connection limit is reached (the connection is closed).
    pub fn admit_connection(&self) -> Result<Option<Guard>, ()> {
        let permit = self.destination.admit_connection()?;
        Ok(permit.map(|p| Box::new(p) as Guard))
    }

    /// Serves one request through the policy layers.
    /// `connection` lives as long as the response (the connection's idle
    /// tracking).
    pub async fn handle(
        &self,
        req: Request<CallerBody>,
        source: Option<SocketAddr>,
        drain: &Watch,
        connection: Option<Guard>,
    ) -> Response<OutboundBody> {
        let service = &self.destination.service;
        let mut guards: Vec<Guard> = connection.into_iter().collect();
        if let Some(config) = &self.config.fault_injection {
            let faults = fault::decide(config);
            if let Some(delay) = faults.delay {
                self.destination.count(Event::FaultDelayed);
                tokio::time::sleep(delay).await;
            }
            if let Some(status) = faults.abort {
                self.destination.count(Event::FaultAborted);
                return responses::fault(&config.name, status).map(Either::Left);
            }
        }
        if let Some(breaker) = &self.destination.breaker
            && let Some(limit) = &breaker.requests
        {
            match limit.try_acquire() {
                Some(permit) => guards.push(Box::new(permit)),
                None => {
                    self.destination.count(Event::Overloaded);
                    return responses::overloaded(service, &breaker.name, "requests", limit.max())
                        .map(Either::Left);
                }
            }
        }
        let timeout = self.config.timeout.as_ref();
        let request_timeout = timeout.and_then(|t| t.request).map(|d| d.get());
        let deadline = request_timeout.map(|d| Instant::now() + d);
        let exchange = self.exchange(req, source, drain, &mut guards);
        let response = match (deadline, request_timeout, timeout) {
            (Some(deadline), Some(after), Some(t)) => {
                match tokio::time::timeout_at(deadline, exchange).await {
                    Ok(response) => response,
                    Err(_) => {
                        self.destination.count(Event::RequestTimeout);
                        return responses::timeout(service, &t.name, after).map(Either::Left);
                    }
                }
            }
            _ => exchange.await,
        };
        let stream_idle = timeout.and_then(|t| t.stream_idle).map(|d| d.get());
        if deadline.is_none() && stream_idle.is_none() && guards.is_empty() {
            return response.map(Either::Left);
        }
        response.map(|body| Either::Right(Guarded::new(body, deadline, stream_idle, guards)))
    }

    /// The route, the retry loop and the endpoint choice.
    async fn exchange(
        &self,
        mut req: Request<CallerBody>,
        source: Option<SocketAddr>,
        drain: &Watch,
        guards: &mut Vec<Guard>,
    ) -> Response<ResponseBody> {
        let destination = &self.destination;
        let snapshot = destination.endpoints.load();
        let key = destination.hash_key(Some(req.headers()), source);
        let subset = self.config.traffic_route.as_ref().and_then(|r| {
            let view = route::View {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
            };
            route::choose(r, Some(view), &snapshot)
        });
        if upgrade::is_upgrade_request(&req) {
            // An upgraded connection is not a request to retry or time out.
            let Some(endpoint) = destination.choose(&snapshot, key, subset, &[]) else {
                return errors::no_endpoints(&destination.service);
            };
            guards.push(Box::new(endpoint.track()));
            return forward::proxy(
                &destination.service,
                std::iter::once(&endpoint.target),
                req,
                drain,
            )
            .await;
        }
        headers::strip_hop_by_hop(req.headers_mut(), false);
        let retry = self.config.retry.as_ref();
        let (head, body) = req.into_parts();
        let (replay, mut once) = match buffer(body, retry).await {
            Ok(Body::Replayable(bytes)) => (Some(bytes), None),
            Ok(Body::Once(body)) => (None, Some(body)),
            Err(e) => return responses::bad_body(&e),
        };
        if let Some(budget) = &self.budget {
            budget.deposit(destination.clock.now());
        }
        let mut tried: Vec<SocketAddr> = Vec::new();
        let mut retries = 0u32;
        loop {
            let Some(endpoint) = destination.choose(&snapshot, key, subset, &tried) else {
                return errors::no_endpoints(&destination.service);
            };
            let request = match (&replay, once.take()) {
                (Some(bytes), _) => rebuild(&head, Either::Right(Buffered::full(bytes.clone()))),
                (None, Some(body)) => rebuild(&head, body),
                // Unreachable: a body sent once is never sent again.
                (None, None) => return errors::no_endpoints(&destination.service),
            };
            let active = endpoint.track();
            let attempt = self.attempt(&snapshot, endpoint, request).await;
            tried.push(endpoint.addr);
            let failure = match &attempt {
                Attempt::Response(r) => Failure::of_response(r.status().as_u16(), r.headers()),
                Attempt::Error(e) if e.is_connect() => Some(Failure::Connect),
                Attempt::Error(_) => Some(Failure::Reset),
                Attempt::TimedOut(_) => Some(Failure::Timeout),
                Attempt::Overloaded(..) => None,
            };
            let again = match failure {
                Some(failure) if replay.is_some() => {
                    self.may_retry(retry, failure, &head, retries, &attempt, tried.len())
                }
                _ => None,
            };
            match again {
                Some(wait) => {
                    debug!(service = %destination.service, endpoint = %endpoint.addr, ?failure, ?wait, "retrying");
                    if let Some(wait) = wait {
                        destination.count(Event::Retry);
                        tokio::time::sleep(wait).await;
                        retries += 1;
                    }
                }
                None => {
                    guards.push(Box::new(active));
                    let mut response = self.finish(attempt, endpoint.addr);
                    if retries > 0 {
                        response.extensions_mut().insert(Retries(retries));
                    }
                    return response;
                }
            }
        }
    }

    /// One try: the pending-request limit, the per-try timeout, outlier
    /// accounting.
    async fn attempt(
        &self,
        snapshot: &Snapshot<Upstream>,
        endpoint: &Arc<Endpoint<Upstream>>,
        request: Request<RequestBody>,
    ) -> Attempt {
        let destination = &self.destination;
        let _pending = match destination
            .breaker
            .as_ref()
            .and_then(|b| b.pending.as_ref().map(|l| (b, l)))
        {
            None => None,
            Some((breaker, limit)) => match limit.try_acquire() {
                Some(permit) => Some(permit),
                None => {
                    destination.count(Event::Overloaded);
                    return Attempt::Overloaded(breaker.name.clone(), limit.max());
                }
            },
        };
        let per_try = self
            .config
            .retry
            .as_ref()
            .and_then(|r| r.per_try_timeout)
            .map(|d| d.get());
        let send = forward::send(&endpoint.target, request);
        let result = match per_try {
            Some(limit) => match tokio::time::timeout(limit, send).await {
                Ok(result) => result,
                Err(_) => {
                    destination.count(Event::TryTimeout);
                    destination.record(snapshot, endpoint, Outcome::GatewayError);
                    return Attempt::TimedOut(limit);
                }
            },
            None => send.await,
        };
        match result {
            Ok(response) => {
                destination.record(
                    snapshot,
                    endpoint,
                    Outcome::of_status(response.status().as_u16()),
                );
                Attempt::Response(response)
            }
            Err(e) => {
                destination.record(snapshot, endpoint, Outcome::GatewayError);
                Attempt::Error(e)
            }
        }
    }

    /// `Some(wait)` to try again after `wait` (`None`: a failover that is
    /// not a retry, without backoff), `None` to stop.
    fn may_retry(
        &self,
        retry: Option<&RetryConfig>,
        failure: Failure,
        head: &Parts,
        retries: u32,
        attempt: &Attempt,
        tries: usize,
    ) -> Option<Option<Duration>> {
        // Like the plain path: a request that reached nobody goes to the
        // next endpoint, whatever the policies say; an idempotent one that
        // a pooled connection closed under, unanswered, goes once more.
        let reached = match attempt {
            Attempt::Error(e) => Some(e.reached()),
            _ => None,
        };
        let failover = match reached {
            Some(Reached::Nothing) => true,
            Some(Reached::Unanswered) => head.method.is_idempotent() && tries == 1,
            _ => false,
        };
        if let Some(config) = retry
            && retry::retryable(config, failure, &head.method)
            && retries + 1 < config.attempts
        {
            let budget = self.budget.as_ref();
            if budget.is_none_or(|b| b.withdraw(self.destination.clock.now())) {
                return Some(Some(retry::backoff(config, retries)));
            }
            self.destination.count(Event::RetryBudgetExhausted);
        }
        (failover && tries < MAX_ATTEMPTS).then_some(None)
    }

    /// The answer for the caller from the last try.
    fn finish(&self, attempt: Attempt, endpoint: SocketAddr) -> Response<ResponseBody> {
        let service = &self.destination.service;
        match attempt {
            Attempt::Response(mut response) => {
                headers::strip_hop_by_hop(response.headers_mut(), false);
                response.map(Either::Left)
            }
            Attempt::Error(e) if e.is_connect() => {
                warn!(%service, %endpoint, error = %errors::chain(&e), "cannot connect to upstream");
                errors::connect_failed(service, endpoint, &e)
            }
            Attempt::Error(e) => {
                warn!(%service, %endpoint, error = %errors::chain(&e), "upstream request failed");
                errors::upstream_failed(service, endpoint, &e)
            }
            Attempt::TimedOut(after) => {
                let name = self.config.retry.as_ref().map_or("", |r| r.name.as_str());
                responses::try_timeout(service, name, after)
            }
            Attempt::Overloaded(name, max) => {
                responses::overloaded(service, &name, "pending requests", max)
            }
        }
    }
}

/// How one try ended.
enum Attempt {
    Response(Response<UpstreamBody>),
    Error(ForwardError),
    TimedOut(Duration),
    /// The pending-request limit (CircuitBreaker name, limit).
    Overloaded(String, u32),
}
