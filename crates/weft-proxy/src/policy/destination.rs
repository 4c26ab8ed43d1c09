//! What the HTTP and TCP policy stacks share about the destination: its
//! endpoints with their state, the balancer, the clock, outlier detection,
//! the circuit-breaker limits and the health checker.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use weft_api::policies::load_balancer::LbKind;

use super::{
    endpoints::{Clock, Endpoint, EndpointSet, Snapshot},
    health::Checker,
    lb::{Lb, hash_of},
    limits::{Limit, Permit},
    outlier::{self, Outcome},
    stats::{Event, PolicyStats},
};
use crate::config::{
    EndpointConfig,
    policies::{HashOn, OutboundPolicies, OutlierConfig},
};

/// One outbound's destination as the policies see it.
#[derive(Debug)]
pub struct Destination<T> {
    pub service: String,
    pub endpoints: Arc<EndpointSet<T>>,
    lb: Lb,
    hash_on: Option<HashOn>,
    pub clock: Clock,
    outlier: Option<OutlierConfig>,
    /// The CircuitBreaker's name and limits, when there is one.
    pub breaker: Option<Breaker>,
    /// Stops the probes when the destination is dropped.
    pub checker: Option<Checker>,
    pub stats: Arc<PolicyStats>,
}

#[derive(Debug)]
pub struct Breaker {
    pub name: String,
    pub connections: Option<Limit>,
    pub pending: Option<Limit>,
    pub requests: Option<Limit>,
}

impl<T: Clone> Destination<T> {
    pub fn new(service: &str, config: &OutboundPolicies, stats: Arc<PolicyStats>) -> Self {
        let lb = config
            .load_balancer
            .as_ref()
            .map_or(LbKind::RoundRobin, |l| l.kind);
        let breaker = config.circuit_breaker.as_ref().map(|c| Breaker {
            name: c.name.clone(),
            connections: c.max_connections.map(Limit::new),
            pending: c.max_pending_requests.map(Limit::new),
            requests: c.max_requests.map(Limit::new),
        });
        Self {
            service: service.to_owned(),
            endpoints: Arc::new(EndpointSet::new(lb == LbKind::RingHash)),
            lb: Lb::new(lb),
            hash_on: config
                .load_balancer
                .as_ref()
                .and_then(|l| l.hash_on.clone()),
            clock: Clock::new(),
            outlier: config
                .circuit_breaker
                .as_ref()
                .and_then(|c| c.outlier_detection.clone()),
            breaker,
            checker: None,
            stats,
        }
    }

    /// Swaps in a new endpoint set; known addresses keep their state.
    pub fn update(&self, endpoints: &[EndpointConfig], make: impl Fn(SocketAddr) -> T) {
        self.endpoints
            .update(endpoints.iter().map(|e| (e.address, e.tags.clone())), make);
    }

    /// The ring-hash key for a request: `header` and `cookie` read the
    /// request's head, `source` is the app's address.
    pub fn hash_key(
        &self,
        headers: Option<&http::HeaderMap>,
        source: Option<SocketAddr>,
    ) -> Option<u64> {
        if self.lb.kind() != LbKind::RingHash {
            return None;
        }
        match self.hash_on.as_ref()? {
            HashOn::Header(name) => headers?.get(name).map(|v| hash_of(&v.as_bytes())),
            HashOn::Cookie(name) => cookie(headers?, name).map(|v| hash_of(&v)),
            HashOn::SourceAddress => source.map(|s| hash_of(&s.ip())),
        }
    }

    /// An endpoint for the next try: available (healthy, not ejected), in
    /// the route's subset, not tried yet; failing that, one already tried;
    /// failing that, any in the subset. Sending to an unhealthy endpoint
    /// beats failing every request when all look down (Envoy's panic mode).
    pub fn choose<'a>(
        &self,
        snapshot: &'a Snapshot<T>,
        key: Option<u64>,
        subset: Option<&BTreeMap<String, String>>,
        tried: &[SocketAddr],
    ) -> Option<&'a Arc<Endpoint<T>>> {
        let now = self.clock.now();
        let in_subset = |e: &Endpoint<T>| subset.is_none_or(|t| e.has_tags(t));
        self.lb
            .pick(snapshot, key, |e| {
                in_subset(e) && e.available(now) && !tried.contains(&e.addr)
            })
            .or_else(|| {
                self.lb
                    .pick(snapshot, key, |e| in_subset(e) && e.available(now))
            })
            .or_else(|| self.lb.pick(snapshot, key, in_subset))
    }

    /// Feeds outlier detection, when the CircuitBreaker has it.
    pub fn record(&self, snapshot: &Snapshot<T>, endpoint: &Endpoint<T>, outcome: Outcome) {
        if let Some(config) = &self.outlier
            && outlier::record(config, snapshot, endpoint, outcome, self.clock.now())
        {
            self.stats.count(&self.service, Event::Ejected);
        }
    }

    pub fn count(&self, event: Event) {
        self.stats.count(&self.service, event);
    }

    /// A slot for one more app connection, or `Err` (counted as overloaded)
    /// when the circuit breaker's connection limit is reached: the caller
    /// closes the connection.
    pub fn admit_connection(&self) -> Result<Option<Permit>, ()> {
        let Some(limit) = self.breaker.as_ref().and_then(|b| b.connections.as_ref()) else {
            return Ok(None);
        };
        match limit.try_acquire() {
            Some(permit) => Ok(Some(permit)),
            None => {
                self.count(Event::Overloaded);
                tracing::debug!(service = %self.service, max = limit.max(), "connection limit reached; closing the connection");
                Err(())
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookies() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; user=ann".parse().unwrap());
        headers.append(http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "user"), Some("ann"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
