//! Each algorithm on plain snapshots: spread, stickiness, filters.

use std::{collections::HashMap, net::SocketAddr, sync::atomic::Ordering};

use weft_api::policies::load_balancer::LbKind;

use super::*;
use crate::policy::endpoints::EndpointSet;

fn set(n: u16, ring: bool) -> EndpointSet<()> {
    let set = EndpointSet::new(ring);
    set.update(
        (0..n).map(|i| {
            (
                SocketAddr::from(([127, 0, 0, 1], 1000 + i)),
                Default::default(),
            )
        }),
        |_| (),
    );
    set
}

fn counts(
    lb: &Lb,
    snapshot: &Snapshot<()>,
    picks: usize,
    key: impl Fn(usize) -> Option<u64>,
) -> HashMap<u16, usize> {
    let mut counts = HashMap::new();
    for i in 0..picks {
        let e = lb.pick(snapshot, key(i), |_| true).unwrap();
        *counts.entry(e.addr.port()).or_default() += 1;
    }
    counts
}

#[test]
fn round_robin_is_even_and_skips_ineligible() {
    let snapshot = set(3, false).load();
    let lb = Lb::new(LbKind::RoundRobin);
    assert!(
        counts(&lb, &snapshot, 300, |_| None)
            .values()
            .all(|c| *c == 100)
    );
    for _ in 0..10 {
        let e = lb.pick(&snapshot, None, |e| e.addr.port() != 1001).unwrap();
        assert_ne!(e.addr.port(), 1001);
    }
    assert!(lb.pick(&snapshot, None, |_| false).is_none());
}

#[test]
fn ring_hash_is_sticky_and_spreads_keys() {
    let snapshot = set(3, true).load();
    let lb = Lb::new(LbKind::RingHash);
    for key in ["alice", "bob", "carol"] {
        let first = lb
            .pick(&snapshot, Some(hash_of(&key)), |_| true)
            .unwrap()
            .addr;
        for _ in 0..20 {
            assert_eq!(
                lb.pick(&snapshot, Some(hash_of(&key)), |_| true)
                    .unwrap()
                    .addr,
                first
            );
        }
    }
    let spread = counts(&lb, &snapshot, 3000, |i| Some(hash_of(&i)));
    assert_eq!(spread.len(), 3);
    assert!(spread.values().all(|c| *c > 600), "{spread:?}");
    // An ineligible owner hands its keys to the next endpoint on the ring.
    let owner = lb
        .pick(&snapshot, Some(hash_of(&"alice")), |_| true)
        .unwrap()
        .addr;
    let other = lb
        .pick(&snapshot, Some(hash_of(&"alice")), |e| e.addr != owner)
        .unwrap();
    assert_ne!(other.addr, owner);
}

#[test]
fn least_request_prefers_the_idle_endpoint() {
    let snapshot = set(2, false).load();
    let busy = snapshot.endpoints[0].clone();
    busy.state.active.store(10, Ordering::Relaxed);
    let lb = Lb::new(LbKind::LeastRequest);
    let spread = counts(&lb, &snapshot, 400, |_| None);
    // Two endpoints: both are always compared, so the idle one wins.
    assert_eq!(spread.get(&1000), None, "{spread:?}");
}

#[test]
fn random_reaches_every_endpoint() {
    let snapshot = set(4, false).load();
    let spread = counts(&Lb::new(LbKind::Random), &snapshot, 400, |_| None);
    assert_eq!(spread.len(), 4, "{spread:?}");
}
