//! The CircuitBreaker's limits: connections, pending requests and requests
//! in flight per outbound. Over a limit the caller is refused at once (503
//! or a closed connection): a queue would only hide the overload.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

/// One limit and how much of it is in use.
#[derive(Debug)]
pub struct Limit {
    max: u32,
    used: Arc<AtomicU32>,
}

/// Holds one unit of a [`Limit`] until dropped.
#[derive(Debug)]
pub struct Permit(Arc<AtomicU32>);

impl Limit {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            used: Arc::new(AtomicU32::new(0)),
        }
    }

    /// A unit of the limit, or `None` when all are in use.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .ok()
            .map(|_| Permit(self.used.clone()))
    }

    pub fn max(&self) -> u32 {
        self.max
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_limit_and_frees_on_drop() {
        let limit = Limit::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert!(limit.try_acquire().is_some());
    }
}
