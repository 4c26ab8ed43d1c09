//! Choosing an endpoint by the LoadBalancer policy: round robin (the
//! default), least request (the less busy of two distinct random picks), ring hash
//! (consistent hashing of a request key) and random.
//!
//! Every algorithm takes an `eligible` filter (available, in the route's
//! subset, not tried yet), so outlier ejection, health checks and traffic
//! splits narrow the choice without building a new list per request.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    sync::{Arc, atomic::AtomicUsize, atomic::Ordering},
};

use weft_api::policies::load_balancer::LbKind;

use super::endpoints::{Endpoint, Snapshot};
use crate::balancer::next_index;

/// Points on the ring per endpoint: enough that three endpoints share
/// keys within a few percent of a third each.
const POINTS_PER_ENDPOINT: usize = 160;

/// A hash ring: points sorted by hash, each naming an endpoint's index.
#[derive(Debug)]
pub struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub fn new(addrs: impl Iterator<Item = SocketAddr>) -> Self {
        let mut points = Vec::new();
        for (index, addr) in addrs.enumerate() {
            for replica in 0..POINTS_PER_ENDPOINT {
                points.push((hash_of(&(addr, replica)), index));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// Endpoint indices clockwise from `key`'s place on the ring (with
    /// repeats; callers stop at the first eligible one).
    fn walk(&self, key: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|(h, _)| *h < key);
        self.points[start..]
            .iter()
            .chain(&self.points[..start])
            .map(|(_, index)| *index)
    }
}

/// A stable hash (the same key always lands on the same point).
pub fn hash_of(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The balancing algorithm of one outbound and its round-robin position.
#[derive(Debug)]
pub struct Lb {
    kind: LbKind,
    next: AtomicUsize,
}

impl Lb {
    pub fn new(kind: LbKind) -> Self {
        Self {
            kind,
            next: AtomicUsize::new(0),
        }
    }

    pub fn kind(&self) -> LbKind {
        self.kind
    }

    /// An eligible endpoint, or `None` when there is none. `key` is the
    /// request's hash key (ring hash only; without one, a random pick).
    pub fn pick<'a, T>(
        &self,
        snapshot: &'a Snapshot<T>,
        key: Option<u64>,
        eligible: impl Fn(&Endpoint<T>) -> bool,
    ) -> Option<&'a Arc<Endpoint<T>>> {
        let endpoints = &snapshot.endpoints;
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        let scan_from = |start: usize| {
            (0..n)
                .map(|i| &endpoints[(start + i) % n])
                .find(|e| eligible(e))
        };
        match (self.kind, key, &snapshot.ring) {
            (LbKind::RoundRobin, _, _) => scan_from(next_index(&self.next, n)),
            (LbKind::RingHash, Some(key), Some(ring)) => ring
                .walk(key)
                .take(ring.points.len())
                .map(|i| &endpoints[i])
                .find(|e| eligible(e)),
            (LbKind::LeastRequest, _, _) => {
                // Two distinct eligible endpoints when there are two.
                let first = scan_from(fastrand::usize(..n))?;
                let start = fastrand::usize(..n);
                let second = (0..n)
                    .map(|i| &endpoints[(start + i) % n])
                    .find(|e| !Arc::ptr_eq(e, first) && eligible(e))
                    .unwrap_or(first);
                let load = |e: &Endpoint<T>| e.state.active.load(Ordering::Relaxed);
                Some(if load(second) < load(first) {
                    second
                } else {
                    first
                })
            }
            _ => scan_from(fastrand::usize(..n)),
        }
    }
}

#[cfg(test)]
mod tests;
