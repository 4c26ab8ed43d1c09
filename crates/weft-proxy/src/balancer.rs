//! Round-robin choice over an endpoint set that the control plane swaps
//! atomically.
//!
//! The request path only loads an `Arc` of the current set: no lock, no
//! allocation, and a request keeps the set it started with even when a new
//! config replaces it mid-flight.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use arc_swap::ArcSwap;

/// Endpoints of one service and the round-robin position among them.
#[derive(Debug)]
pub struct Balancer<T> {
    endpoints: ArcSwap<Vec<T>>,
    next: AtomicUsize,
}

impl<T> Balancer<T> {
    pub fn new(endpoints: Vec<T>) -> Self {
        Self {
            endpoints: ArcSwap::from_pointee(endpoints),
            next: AtomicUsize::new(0),
        }
    }

    /// Replaces the endpoint set; requests already past [`Balancer::pick`]
    /// keep the old one.
    pub fn store(&self, endpoints: Vec<T>) {
        self.endpoints.store(Arc::new(endpoints));
    }

    /// The current endpoint set.
    pub fn endpoints(&self) -> Arc<Vec<T>> {
        self.endpoints.load_full()
    }

    /// The next endpoint in round-robin order, with the snapshot it came
    /// from; `None` when the service has no endpoints.
    pub fn pick(&self) -> Option<Pick<T>> {
        let endpoints = self.endpoints.load_full();
        if endpoints.is_empty() {
            return None;
        }
        let start = next_index(&self.next, endpoints.len());
        Some(Pick { endpoints, start })
    }
}

/// One round-robin choice: the endpoint to try first, and the ones after it
/// for failover.
#[derive(Debug)]
pub struct Pick<T> {
    endpoints: Arc<Vec<T>>,
    start: usize,
}

impl<T> Pick<T> {
    /// Up to `max` distinct endpoints in the order to try them: the chosen
    /// one, then its successors in the set.
    pub fn candidates(&self, max: usize) -> Candidates<'_, T> {
        Candidates {
            endpoints: &self.endpoints,
            start: self.start,
            tried: 0,
            max: max.min(self.endpoints.len()),
        }
    }
}

/// Endpoints to try for one request or connection, in order.
#[derive(Debug)]
pub struct Candidates<'a, T> {
    endpoints: &'a [T],
    start: usize,
    tried: usize,
    max: usize,
}

impl<T> Candidates<'_, T> {
    /// No endpoint at all, for a service without a pick.
    pub fn none() -> Self {
        Candidates {
            endpoints: &[],
            start: 0,
            tried: 0,
            max: 0,
        }
    }
}

impl<'a, T> Iterator for Candidates<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.tried >= self.max {
            return None;
        }
        let index = (self.start + self.tried) % self.endpoints.len();
        self.tried += 1;
        self.endpoints.get(index)
    }
}

/// Advances a round-robin counter and returns the index to use, in `0..len`.
///
/// The counter is kept reduced modulo `len`, so it never wraps. A counter
/// that grows forever and is reduced only when read goes wrong at the wrap:
/// as a signed number it turns negative (and so does its modulo), and even
/// unsigned, `usize::MAX % len` followed by `0 % len` skips or repeats an
/// endpoint whenever `len` does not divide 2^64.
pub(crate) fn next_index(counter: &AtomicUsize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    // `i % len + 1 <= len`, so this cannot overflow. The closure never
    // returns `None`, so both arms carry the previous value.
    let previous = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
        Some((i % len + 1) % len)
    });
    match previous {
        Ok(i) | Err(i) => i % len,
    }
}

#[cfg(test)]
mod tests;
