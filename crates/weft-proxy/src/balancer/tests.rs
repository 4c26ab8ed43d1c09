//! Round robin: evenness, the counter wrap, and endpoint-set swaps.

use std::sync::atomic::AtomicUsize;

use super::*;

/// Counts how often each index comes out of `picks` calls.
fn distribution(counter: &AtomicUsize, len: usize, picks: usize) -> Vec<usize> {
    let mut counts = vec![0; len];
    for _ in 0..picks {
        counts[next_index(counter, len)] += 1;
    }
    counts
}

#[test]
fn stays_even_across_the_counter_wrap() {
    for len in [1, 2, 3, 5, 7] {
        // Start right below the wrap, where a free-running counter would
        // jump from `usize::MAX % len` back to 0.
        let counter = AtomicUsize::new(usize::MAX - 2);
        let mut previous = next_index(&counter, len);
        for _ in 0..10 * len {
            let index = next_index(&counter, len);
            assert_eq!(
                index,
                (previous + 1) % len,
                "len {len}: consecutive picks must be successive"
            );
            previous = index;
        }
        let counter = AtomicUsize::new(usize::MAX - 1);
        assert_eq!(
            distribution(&counter, len, 300 * len),
            vec![300; len],
            "len {len}"
        );
    }
}

#[test]
fn even_over_three_endpoints() {
    let balancer = Balancer::new(vec!["a", "b", "c"]);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..300 {
        let pick = balancer.pick().unwrap();
        *counts
            .entry(*pick.candidates(1).next().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");
}

#[test]
fn empty_set_has_no_pick() {
    let balancer = Balancer::<&str>::new(vec![]);
    assert!(balancer.pick().is_none());
}

#[test]
fn candidates_follow_the_pick_without_repeats() {
    let balancer = Balancer::new(vec![1, 2, 3, 4]);
    let _ = balancer.pick();
    let pick = balancer.pick().unwrap();
    assert_eq!(pick.candidates(3).copied().collect::<Vec<_>>(), [2, 3, 4]);
    let pick = balancer.pick().unwrap();
    assert_eq!(pick.candidates(3).copied().collect::<Vec<_>>(), [3, 4, 1]);
    let small = Balancer::new(vec![1, 2]);
    assert_eq!(small.pick().unwrap().candidates(3).count(), 2);
}

#[test]
fn swap_applies_to_the_next_pick_but_not_to_a_taken_one() {
    let balancer = Balancer::new(vec!["old"]);
    let taken = balancer.pick().unwrap();
    balancer.store(vec!["new"]);
    assert_eq!(taken.candidates(1).next(), Some(&"old"));
    assert_eq!(balancer.pick().unwrap().candidates(1).next(), Some(&"new"));
}

#[test]
fn shrinking_the_set_keeps_indexes_in_range() {
    let balancer = Balancer::new(vec![1, 2, 3, 4, 5]);
    for _ in 0..4 {
        let _ = balancer.pick();
    }
    balancer.store(vec![1, 2]);
    for _ in 0..10 {
        assert!(balancer.pick().unwrap().candidates(1).next().is_some());
    }
}
