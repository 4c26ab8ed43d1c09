//! Request and connection counts per edge — (direction, source service,
//! destination service[, route]) — recorded on the request path.
//!
//! The request path must not take a lock: each label set's counters are
//! atomics behind an `Arc`, found in a map read through `arc-swap`. Only
//! the first request of a new label set copies the map (under a mutex that
//! the readers never see); label sets are few (this proxy's services and
//! routes), so the copies are rare and small.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;

use super::histogram::LatencyHistogram;

/// Status codes are counted in an array indexed by the code; larger codes
/// (not valid HTTP) share the last slot.
const STATUS_SLOTS: usize = 600;

/// (direction, source service, destination service, route) of requests.
pub type RequestKey = (&'static str, Arc<str>, Arc<str>, Arc<str>);
/// (direction, source service, destination service) of connections.
pub type ConnectionKey = (&'static str, Arc<str>, Arc<str>);

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

/// A map of label sets to counters that the request path reads without a lock.
#[derive(Debug)]
pub struct Counters<K, V> {
    map: ArcSwap<HashMap<K, Arc<V>>>,
    /// Serializes writers so that no insert is lost between copy and store.
    insert: Mutex<()>,
}

impl<K, V> Default for Counters<K, V> {
    fn default() -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> Counters<K, V> {
    /// The counters of `key`, created on first use.
    pub fn get(&self, key: &K) -> Arc<V> {
        if let Some(v) = self.map.load().get(key) {
            return v.clone();
        }
        // A poisoned lock guards nothing but the order of writers.
        let _writer = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if let Some(v) = current.get(key) {
            return v.clone();
        }
        let mut next = HashMap::clone(&current);
        let v = Arc::new(V::default());
        next.insert(key.clone(), v.clone());
        self.map.store(Arc::new(next));
        v
    }

    /// Every label set and its counters, at this moment.
    pub fn snapshot(&self) -> Arc<HashMap<K, Arc<V>>> {
        self.map.load_full()
    }
}

/// Everything this proxy counts per edge.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: Counters<RequestKey, RequestCounters>,
    pub connections: Counters<ConnectionKey, ConnectionCounters>,
}

impl Traffic {
    pub fn request(&self, key: &RequestKey, status: u16, latency: Duration) {
        self.requests.get(key).record(status, latency);
    }

    pub fn connection_opened(&self, key: &ConnectionKey) {
        self.connections
            .get(key)
            .opened
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, key: &ConnectionKey, bytes_in: u64, bytes_out: u64) {
        let c = self.connections.get(key);
        c.closed.fetch_add(1, Ordering::Relaxed);
        c.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        c.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(route: &str) -> RequestKey {
        ("outbound", "web".into(), "backend".into(), route.into())
    }

    #[test]
    fn requests_count_by_status_and_label_set() {
        let t = Traffic::default();
        t.request(&key(""), 200, Duration::from_millis(2));
        t.request(&key(""), 200, Duration::from_millis(2));
        t.request(&key(""), 503, Duration::from_millis(2));
        t.request(&key("canary"), 404, Duration::from_millis(2));
        let map = t.requests.snapshot();
        assert_eq!(map.len(), 2);
        let plain = &map[&key("")];
        assert_eq!(plain.statuses().collect::<Vec<_>>(), [(200, 2), (503, 1)]);
        assert_eq!(plain.totals(), (3, 2));
        assert_eq!(map[&key("canary")].totals(), (1, 1));
        assert_eq!(plain.latency.snapshot().count(), 3);
    }

    #[test]
    fn odd_status_codes_share_the_last_slot() {
        let t = Traffic::default();
        t.request(&key(""), 999, Duration::ZERO);
        // A client that went away is no success either.
        t.request(&key(""), 0, Duration::ZERO);
        let map = t.requests.snapshot();
        assert_eq!(map[&key("")].totals(), (2, 0));
    }

    #[test]
    fn connections_count_open_close_and_bytes() {
        let t = Traffic::default();
        let k: ConnectionKey = ("inbound", "".into(), "db".into());
        t.connection_opened(&k);
        t.connection_opened(&k);
        t.connection_closed(&k, 10, 20);
        let c = t.connections.get(&k);
        assert_eq!(c.opened.load(Ordering::Relaxed), 2);
        assert_eq!(c.closed.load(Ordering::Relaxed), 1);
        assert_eq!(c.bytes_in.load(Ordering::Relaxed), 10);
        assert_eq!(c.bytes_out.load(Ordering::Relaxed), 20);
    }
}
