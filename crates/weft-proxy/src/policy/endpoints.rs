//! An outbound's endpoints as the policy stack sees them: each with the
//! state that outlier detection, health checks and least-request balancing
//! keep about it, swapped atomically like the plain balancer's set.
//!
//! State is kept per address across endpoint-set updates, so an endpoint
//! that stays keeps its ejection, health and connection pool.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;

use super::lb::Ring;

/// One endpoint of the destination and what is known about it. `T` is how
/// it is reached: a pooled HTTP client, or just its address for TCP.
#[derive(Debug)]
pub struct Endpoint<T> {
    pub addr: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub target: T,
    /// Shared with the endpoint's next version when only its tags change,
    /// so ejection, health and load survive a retag.
    pub state: Arc<EndpointState>,
}

/// Counters updated from the request path without locks.
#[derive(Debug)]
pub struct EndpointState {
    /// False once active health checks fail it.
    pub healthy: AtomicBool,
    /// Milliseconds since [`Clock`]'s start until which the endpoint is
    /// ejected; 0 when it is not.
    pub ejected_until: AtomicU64,
    pub times_ejected: AtomicU32,
    pub consecutive_5xx: AtomicU32,
    pub consecutive_gateway: AtomicU32,
    /// Requests or connections in flight, for least-request balancing.
    pub active: AtomicU32,
    /// Health probes passed or failed in a row.
    pub probe_successes: AtomicU32,
    pub probe_failures: AtomicU32,
}

impl Default for EndpointState {
    fn default() -> Self {
        Self {
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            active: AtomicU32::new(0),
            probe_successes: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
        }
    }
}

impl<T> Endpoint<T> {
    /// Healthy and not ejected at `now` (milliseconds of [`Clock`]).
    pub fn available(&self, now: u64) -> bool {
        self.state.healthy.load(Ordering::Relaxed) && !self.ejected(now)
    }

    pub fn ejected(&self, now: u64) -> bool {
        self.state.ejected_until.load(Ordering::Relaxed) > now
    }

    /// Whether every tag of `subset` is on this endpoint.
    pub fn has_tags(&self, subset: &BTreeMap<String, String>) -> bool {
        subset.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }

    /// Counts a request or connection in flight until the guard drops.
    pub fn track(self: &Arc<Self>) -> Active<T> {
        self.state.active.fetch_add(1, Ordering::Relaxed);
        Active(self.clone())
    }
}

/// One request or connection in flight to an endpoint.
#[derive(Debug)]
pub struct Active<T>(Arc<Endpoint<T>>);

impl<T> Drop for Active<T> {
    fn drop(&mut self) {
        self.0.state.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A monotonic millisecond clock shared by the stack: atomics can hold its
/// readings, which they cannot do with an `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        // Start a little in the past so that "0" always means "never".
        let now = Instant::now();
        Self(now.checked_sub(Duration::from_secs(1)).unwrap_or(now))
    }

    pub fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One version of the endpoint set, and the hash ring over it when the
/// balancer needs one.
#[derive(Debug)]
pub struct Snapshot<T> {
    pub endpoints: Vec<Arc<Endpoint<T>>>,
    pub ring: Option<Ring>,
}

/// The current snapshot; the request path loads it without a lock.
#[derive(Debug)]
pub struct EndpointSet<T> {
    current: ArcSwap<Snapshot<T>>,
    with_ring: bool,
}

impl<T> EndpointSet<T> {
    pub fn new(with_ring: bool) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot {
                endpoints: Vec::new(),
                ring: None,
            }),
            with_ring,
        }
    }

    pub fn load(&self) -> Arc<Snapshot<T>> {
        self.current.load_full()
    }

    /// Replaces the set with `next` (address, tags); an address already in
    /// the set keeps its state and target, a new one gets `make(addr)`.
    pub fn update(
        &self,
        next: impl IntoIterator<Item = (SocketAddr, BTreeMap<String, String>)>,
        make: impl Fn(SocketAddr) -> T,
    ) where
        T: Clone,
    {
        let current = self.current.load();
        let known: HashMap<SocketAddr, &Arc<Endpoint<T>>> =
            current.endpoints.iter().map(|e| (e.addr, e)).collect();
        let endpoints: Vec<Arc<Endpoint<T>>> = next
            .into_iter()
            .map(|(addr, tags)| match known.get(&addr) {
                Some(e) if e.tags == tags => Arc::clone(e),
                // Same address with new tags: same state and pool, new tags.
                Some(e) => Arc::new(Endpoint {
                    addr,
                    tags,
                    target: e.target.clone(),
                    state: Arc::clone(&e.state),
                }),
                None => Arc::new(Endpoint {
                    addr,
                    tags,
                    target: make(addr),
                    state: Arc::default(),
                }),
            })
            .collect();
        let ring = self
            .with_ring
            .then(|| Ring::new(endpoints.iter().map(|e| e.addr)));
        self.current.store(Arc::new(Snapshot { endpoints, ring }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retagged_endpoint_keeps_its_ejection_and_health() {
        let set = EndpointSet::<()>::new(false);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let tags = |v: &str| BTreeMap::from([("version".to_owned(), v.to_owned())]);
        set.update([(addr, tags("v1"))], |_| ());
        let before = Arc::clone(&set.load().endpoints[0]);
        before.state.ejected_until.store(99, Ordering::Relaxed);
        before.state.healthy.store(false, Ordering::Relaxed);

        set.update([(addr, tags("v2"))], |_| ());
        let after = &set.load().endpoints[0];
        assert_eq!(after.tags, tags("v2"));
        assert_eq!(after.state.ejected_until.load(Ordering::Relaxed), 99);
        assert!(!after.state.healthy.load(Ordering::Relaxed));
    }
}
