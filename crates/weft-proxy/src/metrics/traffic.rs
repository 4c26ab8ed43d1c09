//! Request and connection counts per edge — (direction, source service,
//! destination service[, route]) — recorded on the request path.
//!
//! The request path must not take a lock: each label set's counters are
//! atomics, found by borrowed label values (`labels`) in a map read through
//! `arc-swap`. Only
//! the first request of a new label set copies the map (under a mutex that
//! the readers never see); label sets are few (this proxy's services and
//! routes), so the copies are rare and small. The map hashes with
//! foldhash: SipHash cost more than the rest of a lookup.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;

use super::{
    histogram::LatencyHistogram,
    labels::{Key, Labels},
};

/// Status codes are counted in an array indexed by the code; larger codes
/// (not valid HTTP) share the last slot.
const STATUS_SLOTS: usize = 600;

/// (direction, source service, destination service, route) of requests.
pub type RequestLabels<'a> = [&'a str; 4];
/// (direction, source service, destination service) of connections.
pub type ConnectionLabels<'a> = [&'a str; 3];

/// Counters of one request label set.
#[derive(Debug)]
pub struct RequestCounters {
    statuses: Box<[AtomicU64]>,
    pub latency: LatencyHistogram,
}

impl Default for RequestCounters {
    fn default() -> Self {
        Self {
            statuses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            latency: LatencyHistogram::default(),
        }
    }
}

impl RequestCounters {
    fn record(&self, status: u16, latency: Duration) {
        let slot = usize::from(status).min(STATUS_SLOTS - 1);
        self.statuses[slot].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
    }

    /// (status code, requests) for every code seen.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses.iter().enumerate().filter_map(|(code, n)| {
            let n = n.load(Ordering::Relaxed);
            // The index is below STATUS_SLOTS, so it fits.
            (n > 0).then(|| (u16::try_from(code).unwrap_or(u16::MAX), n))
        })
    }

    /// (requests, successes): a success got an answer below 500. A request
    /// whose client went away before the answer (status 0) is not one.
    pub fn totals(&self) -> (u64, u64) {
        self.statuses().fold((0, 0), |(all, ok), (code, n)| {
            let success = (1..500).contains(&code);
            (all + n, if success { ok + n } else { ok })
        })
    }
}

/// Counters of one connection label set.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    /// Bytes from the client.
    pub bytes_in: AtomicU64,
    /// Bytes to the client.
    pub bytes_out: AtomicU64,
}

/// Label sets to their counters.
pub type LabelMap<const N: usize, V> = HashMap<Key<N>, Arc<V>, foldhash::fast::RandomState>;

/// A map of label sets to counters that the request path reads without a lock.
#[derive(Debug)]
pub struct Counters<const N: usize, V> {
    map: ArcSwap<LabelMap<N, V>>,
    /// Serializes writers so that no insert is lost between copy and store.
    insert: Mutex<()>,
}

impl<const N: usize, V> Default for Counters<N, V> {
    fn default() -> Self {
        Self {
            map: ArcSwap::from_pointee(LabelMap::default()),
            insert: Mutex::new(()),
        }
    }
}

impl<const N: usize, V: Default> Counters<N, V> {
    /// Runs `f` on the counters of `labels`, created on first use.
    pub fn with<R>(&self, labels: [&str; N], f: impl FnOnce(&V) -> R) -> R {
        if let Some(v) = self.map.load().get(&labels as &dyn Labels<N>) {
            return f(v);
        }
        f(&self.insert_new(labels))
    }

    #[cold]
    fn insert_new(&self, labels: [&str; N]) -> Arc<V> {
        // A poisoned lock guards nothing but the order of writers.
        let _writer = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if let Some(v) = current.get(&labels as &dyn Labels<N>) {
            return v.clone();
        }
        let mut next = LabelMap::clone(&current);
        let v = Arc::new(V::default());
        next.insert(Key::new(labels), v.clone());
        self.map.store(Arc::new(next));
        v
    }

    /// Every label set and its counters, at this moment.
    pub fn snapshot(&self) -> Arc<LabelMap<N, V>> {
        self.map.load_full()
    }
}

/// Everything this proxy counts per edge.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: Counters<4, RequestCounters>,
    pub connections: Counters<3, ConnectionCounters>,
}

impl Traffic {
    pub fn request(&self, labels: RequestLabels, status: u16, latency: Duration) {
        self.requests.with(labels, |c| c.record(status, latency));
    }

    pub fn connection_opened(&self, labels: ConnectionLabels) {
        self.connections.with(labels, |c| {
            c.opened.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub fn connection_closed(&self, labels: ConnectionLabels, bytes_in: u64, bytes_out: u64) {
        self.connections.with(labels, |c| {
            c.closed.fetch_add(1, Ordering::Relaxed);
            c.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
            c.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(route: &str) -> RequestLabels<'_> {
        ["outbound", "web", "backend", route]
    }

    fn get<const N: usize, V>(map: &LabelMap<N, V>, labels: [&str; N]) -> Arc<V> {
        map[&labels as &dyn Labels<N>].clone()
    }

    #[test]
    fn requests_count_by_status_and_label_set() {
        let t = Traffic::default();
        t.request(key(""), 200, Duration::from_millis(2));
        t.request(key(""), 200, Duration::from_millis(2));
        t.request(key(""), 503, Duration::from_millis(2));
        t.request(key("canary"), 404, Duration::from_millis(2));
        let map = t.requests.snapshot();
        assert_eq!(map.len(), 2);
        let plain = get(&map, key(""));
        assert_eq!(plain.statuses().collect::<Vec<_>>(), [(200, 2), (503, 1)]);
        assert_eq!(plain.totals(), (3, 2));
        assert_eq!(get(&map, key("canary")).totals(), (1, 1));
        assert_eq!(plain.latency.snapshot().count(), 3);
    }

    #[test]
    fn concurrent_first_requests_lose_no_counts() {
        let t = Arc::new(Traffic::default());
        let routes: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (t, routes) = (t.clone(), &routes);
                scope.spawn(move || {
                    for i in 0..2_000 {
                        t.request(key(&routes[i % routes.len()]), 200, Duration::ZERO);
                    }
                });
            }
        });
        let map = t.requests.snapshot();
        assert_eq!(map.len(), 20);
        let total: u64 = map.values().map(|c| c.totals().0).sum();
        assert_eq!(total, 8_000);
    }

    #[test]
    fn odd_status_codes_share_the_last_slot() {
        let t = Traffic::default();
        t.request(key(""), 999, Duration::ZERO);
        // A client that went away is no success either.
        t.request(key(""), 0, Duration::ZERO);
        let map = t.requests.snapshot();
        assert_eq!(get(&map, key("")).totals(), (2, 0));
    }

    #[test]
    fn connections_count_open_close_and_bytes() {
        let t = Traffic::default();
        let k = ["inbound", "", "db"];
        t.connection_opened(k);
        t.connection_opened(k);
        t.connection_closed(k, 10, 20);
        let c = get(&t.connections.snapshot(), k);
        assert_eq!(c.opened.load(Ordering::Relaxed), 2);
        assert_eq!(c.closed.load(Ordering::Relaxed), 1);
        assert_eq!(c.bytes_in.load(Ordering::Relaxed), 10);
        assert_eq!(c.bytes_out.load(Ordering::Relaxed), 20);
    }
}
