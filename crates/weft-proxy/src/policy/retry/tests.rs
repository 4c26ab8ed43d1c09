//! Retry conditions, backoff bounds and the budget.

use weft_api::duration::PolicyDuration;

use super::*;

fn config() -> RetryConfig {
    RetryConfig {
        name: "r".into(),
        attempts: 3,
        per_try_timeout: None,
        on_connect_failure: true,
        on_reset: true,
        on_5xx: false,
        on_gateway_error: true,
        grpc_status_codes: vec![14],
        allow_non_idempotent: false,
        budget_percent: 20,
        budget_min_retries_per_second: 0,
        backoff_base: PolicyDuration::from_millis(10),
        backoff_max: PolicyDuration::from_millis(35),
        buffer_limit_bytes: 1024,
    }
}

#[test]
fn conditions_and_idempotency() {
    let c = config();
    assert!(retryable(&c, Failure::Status(503), &Method::GET));
    assert!(
        !retryable(&c, Failure::Status(500), &Method::GET),
        "only gateway errors"
    );
    assert!(
        !retryable(&c, Failure::Status(503), &Method::POST),
        "POST is not idempotent"
    );
    assert!(
        retryable(&c, Failure::Connect, &Method::POST),
        "nothing was sent"
    );
    assert!(
        retryable(&c, Failure::Grpc(14), &Method::POST),
        "gRPC calls are POSTs"
    );
    assert!(retryable(&c, Failure::Timeout, &Method::GET));
    assert!(!retryable(&c, Failure::Timeout, &Method::POST));
    assert!(!retryable(&c, Failure::Grpc(2), &Method::GET));
    let all = RetryConfig {
        on_5xx: true,
        allow_non_idempotent: true,
        ..config()
    };
    assert!(retryable(&all, Failure::Status(500), &Method::POST));
}

#[test]
fn backoff_grows_to_the_cap_with_jitter() {
    let c = config();
    for retry in 0..8 {
        let cap = Duration::from_millis((10u64 << retry).min(35));
        for _ in 0..50 {
            assert!(backoff(&c, retry) <= cap);
        }
    }
    // Huge retry counts saturate instead of overflowing, and jitter spreads.
    let waits: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(&c, 1000)).collect();
    assert!(waits.iter().all(|w| *w <= Duration::from_millis(35)));
    assert!(waits.len() > 1, "{waits:?}");
}

#[test]
fn budget_caps_retries_at_the_share_of_requests() {
    let budget = Budget::new(20, 0);
    let mut granted = 0;
    for i in 0..1000u64 {
        let now = i * 5; // 200 requests a second over 5 s
        budget.deposit(now);
        if budget.withdraw(now) {
            granted += 1;
        }
    }
    assert!((190..=201).contains(&granted), "{granted}");
    // The window forgets: after 10 quiet seconds only the minimum is left.
    assert!(!Budget::new(20, 0).withdraw(100_000));
    let floor = Budget::new(20, 1);
    let allowed = (0..20).filter(|_| floor.withdraw(100_000)).count();
    assert_eq!(allowed, 10, "1 a second over the 10 s window");
}
