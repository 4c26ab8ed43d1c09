//! Label sets as map keys that the request path finds by borrowed strings:
//! a lookup allocates nothing and touches no reference count (a shared
//! `Arc<str>` per service would be one more contended cache line per
//! request on every core).

use std::{
    borrow::Borrow,
    hash::{Hash, Hasher},
};

/// Anything that can show its label values, owned or borrowed.
pub trait Labels<const N: usize> {
    fn values(&self) -> [&str; N];
}

/// An owned label set: made once, when its first request is counted.
#[derive(Debug, Clone)]
pub struct Key<const N: usize>([Box<str>; N]);

impl<const N: usize> Key<N> {
    pub fn new(values: [&str; N]) -> Self {
        Self(values.map(Box::from))
    }
}

impl<const N: usize> Labels<N> for Key<N> {
    fn values(&self) -> [&str; N] {
        std::array::from_fn(|i| &*self.0[i])
    }
}

impl<const N: usize> Labels<N> for [&str; N] {
    fn values(&self) -> [&str; N] {
        *self
    }
}

// Owned and borrowed keys hash and compare by the same values, as
// `Borrow` requires.
impl<const N: usize> Hash for dyn Labels<N> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.values().hash(state);
    }
}

impl<const N: usize> PartialEq for dyn Labels<N> + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl<const N: usize> Eq for dyn Labels<N> + '_ {}

impl<const N: usize> Hash for Key<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.values().hash(state);
    }
}

impl<const N: usize> PartialEq for Key<N> {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl<const N: usize> Eq for Key<N> {}

impl<'a, const N: usize> Borrow<dyn Labels<N> + 'a> for Key<N> {
    fn borrow(&self) -> &(dyn Labels<N> + 'a) {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn found_by_borrowed_values() {
        let mut map = HashMap::new();
        map.insert(Key::new(["outbound", "web", "backend"]), 1);
        map.insert(Key::new(["outbound", "web", "db"]), 2);
        let probe = ["outbound", "web", "db"];
        assert_eq!(map.get(&probe as &dyn Labels<3>), Some(&2));
        let missing = ["inbound", "web", "db"];
        assert_eq!(map.get(&missing as &dyn Labels<3>), None);
    }
}
