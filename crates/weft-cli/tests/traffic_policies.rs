//! Reliability policies with real traffic through real proxies: Retry (and
//! its budget), outlier detection, health checks, circuit-breaker limits
//! and timeouts, each against steerable backends (`weft_testkit::behavior`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use weft_testkit::{
    TestMesh,
    load::{Answer, burst, burst_with, count},
    servers, wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_hides_a_backend_failing_a_fifth_of_requests() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(&cp, &caller, "retry-5xx", weft_testkit::scenario::RETRY_5XX)
        .await
        .unwrap();

    backend.behavior.set_fail_percent(20);
    let answers = burst(&url, 2000, 16, |_| vec![]).await;
    let ok = count(&answers, |a| a.status == 200);
    assert!(ok >= 1998, "success {ok}/2000 is under 99.9 %");
    // The backend saw the failures the caller did not.
    let served = backend.behavior.requests();
    assert!(
        served > 2300,
        "only {served} requests reached the backend: no retries?"
    );
    let (_, metrics) = servers::http_get(&caller.admin_url("/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("weft_policy_events_total{service=\"backend\",event=\"retry\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_resends_buffered_bodies_only_when_allowed() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    let retry = |name: &str, allow: bool| {
        format!(
            "type: Retry\nmesh: default\nname: {name}\nselector: {{ to: {{ service: backend }} }}\n\
             spec: {{ attempts: 10, retryOn: [5xx], allowNonIdempotent: {allow}, \
             budget: {{ percent: 100 }}, backoff: {{ base: 1ms, max: 2ms }} }}\n"
        )
    };
    let body = Some(bytes::Bytes::from(vec![b'x'; 1000]));
    backend.behavior.set_fail_percent(30);

    mesh.apply_policy(&cp, &caller, "posts-stay", &retry("posts-stay", false))
        .await
        .unwrap();
    let answers = burst_with(&url, 100, 4, |_| vec![], body.clone()).await;
    let failed = count(&answers, |a| a.status == 503);
    assert!(
        (12..=50).contains(&failed),
        "{failed} of 100 POSTs failed: were they retried?"
    );

    let out = mesh
        .cli(&cp, &["delete", "retry", "posts-stay"])
        .await
        .unwrap();
    assert!(out.status.success());
    mesh.apply_policy(&cp, &caller, "posts-retry", &retry("posts-retry", true))
        .await
        .unwrap();
    let served = backend.behavior.requests();
    let bytes = backend.behavior.body_bytes.load(Ordering::Relaxed);
    let answers = burst_with(&url, 100, 4, |_| vec![], body).await;
    assert_eq!(count(&answers, |a| a.status == 200), 100, "{answers:?}");
    let tries = backend.behavior.requests() - served;
    let received = backend.behavior.body_bytes.load(Ordering::Relaxed) - bytes;
    assert!(
        tries > 115,
        "only {tries} tries for 100 POSTs failing 30 % of the time"
    );
    assert_eq!(received, tries * 1000, "every try carries the whole body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_budget_caps_retries_when_everything_fails() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "budgeted",
        "type: Retry\nmesh: default\nname: budgeted\nselector: { to: { service: backend } }\n\
         spec: { attempts: 5, retryOn: [5xx], budget: { percent: 20, minRetriesPerSecond: 0 }, \
         backoff: { base: 1ms, max: 5ms } }\n",
    )
    .await
    .unwrap();

    backend.behavior.set_fail_percent(100);
    let before = backend.behavior.requests();
    let answers = burst(&url, 400, 8, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 503), 400);
    let served = backend.behavior.requests() - before;
    // Without the budget: 5 tries each, 2,000. With it: 400 + 20 %.
    assert!(
        (440..=490).contains(&served),
        "{served} requests reached the backend for 400 calls"
    );
    let (_, metrics) = servers::http_get(&caller.admin_url("/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("event=\"retry_budget_exhausted\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeout_moves_a_slow_try_to_another_endpoint() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let backends = mesh
        .backends(&cp, "backend", &["backend-fast", "backend-slow"])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 2).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "per-try",
        "type: Retry\nmesh: default\nname: per-try\nselector: { to: { service: backend } }\n\
         spec: { attempts: 2, perTryTimeout: 300ms, backoff: { base: 1ms, max: 1ms } }\n",
    )
    .await
    .unwrap();

    backends[1].behavior.set_delay(Duration::from_secs(3));
    let answers = burst(&url, 20, 4, |_| vec![]).await;
    for a in &answers {
        assert_eq!((a.status, a.body.as_str()), (200, "backend-fast"), "{a:?}");
        assert!(
            a.elapsed < Duration::from_millis(1500),
            "took {:?}",
            a.elapsed
        );
    }
    assert!(
        backends[1].behavior.requests() > 0,
        "the slow endpoint was never tried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_ejects_a_failing_endpoint_and_returns_it() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let backends = mesh
        .backends(&cp, "backend", &["backend-a", "backend-b", "backend-c"])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 3).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "eject",
        "type: CircuitBreaker\nmesh: default\nname: eject\nselector: { to: { service: backend } }\n\
         spec: { outlierDetection: { consecutive5xx: 3, baseEjectionTime: 3s, maxEjectionPercent: 50 } }\n",
    )
    .await
    .unwrap();

    backends[2].behavior.set_fail_percent(100);
    // One at a time, so the count of failures is exact.
    let answers = burst(&url, 30, 1, |_| vec![]).await;
    let failed = count(&answers, |a| a.status == 503);
    assert_eq!(failed, 3, "ejected after exactly 3 consecutive 5xx");
    let last_failure = answers.iter().rposition(|a| a.status == 503).unwrap();
    assert!(last_failure < 12, "still failing at request {last_failure}");
    let ejected_at = Instant::now();

    backends[2].behavior.set_fail_percent(0);
    let burst_at = ejected_at.elapsed();
    let during = burst(&url, 20, 1, |_| vec![]).await;
    // Only answers sent well inside the 3 s ejection count; a slow runner
    // shrinks that window but never skips the check.
    let inside = |a: &&Answer| burst_at + a.sent_at < Duration::from_millis(2500);
    let in_window: Vec<_> = during.iter().filter(inside).collect();
    assert!(
        in_window.len() >= 5,
        "only {} requests inside the ejection window",
        in_window.len()
    );
    assert!(
        in_window.iter().all(|a| a.body != "backend-c"),
        "ejected endpoint got traffic"
    );
    wait::until(
        "backend-c back in rotation",
        Duration::from_secs(10),
        || async {
            let answers = burst(&url, 6, 1, |_| vec![]).await;
            answers.iter().any(|a| a.body == "backend-c").then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        ejected_at.elapsed() >= Duration::from_millis(2500),
        "returned after {:?}, before the 3 s ejection time",
        ejected_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_check_takes_an_endpoint_out_within_two_intervals() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let a = mesh
        .backend(&cp, "backend-a", "backend", &[])
        .await
        .unwrap();
    let b = mesh
        .backend(&cp, "backend-b", "backend", &[])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 2).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "probe",
        "type: HealthCheck\nmesh: default\nname: probe\nselector: { to: { service: backend } }\n\
         spec: { interval: 500ms, timeout: 300ms, unhealthyThreshold: 2, healthyThreshold: 1, \
         http: { path: /health } }\n",
    )
    .await
    .unwrap();
    wait::until("probes reach the apps", Duration::from_secs(10), || async {
        (b.behavior.probes.load(Ordering::Relaxed) > 0
            && a.behavior.probes.load(Ordering::Relaxed) > 0)
            .then_some(())
    })
    .await
    .unwrap();

    // The app still answers requests; only its health endpoint fails.
    b.behavior.set_healthy(false);
    let flipped = Instant::now();
    let mut last_b = flipped;
    while flipped.elapsed() < Duration::from_secs(3) {
        for answer in burst(&url, 4, 2, |_| vec![]).await {
            assert_eq!(answer.status, 200);
            if answer.body == "backend-b" {
                last_b = Instant::now();
            }
        }
    }
    let out_after = last_b.duration_since(flipped);
    assert!(
        out_after <= Duration::from_millis(1000 + 600),
        "backend-b still got traffic {out_after:?} after failing (2 intervals = 1 s)"
    );
    b.behavior.set_healthy(true);
    wait::until(
        "backend-b back after passing",
        Duration::from_secs(5),
        || async {
            burst(&url, 4, 1, |_| vec![])
                .await
                .iter()
                .any(|a| a.body == "backend-b")
                .then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_check_takes_a_not_serving_endpoint_out() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let a = mesh
        .backend_speaking(&cp, "backend-a", "backend", "grpc", &[])
        .await
        .unwrap();
    let b = mesh
        .backend_speaking(&cp, "backend-b", "backend", "grpc", &[])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 2).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "grpc-probe",
        "type: HealthCheck\nmesh: default\nname: grpc-probe\nselector: { to: { service: backend } }\n\
         spec: { interval: 300ms, timeout: 200ms, unhealthyThreshold: 1, grpc: {} }\n",
    )
    .await
    .unwrap();
    wait::until(
        "gRPC probes reach both apps",
        Duration::from_secs(10),
        || async {
            (a.behavior.probes.load(Ordering::Relaxed) > 0
                && b.behavior.probes.load(Ordering::Relaxed) > 0)
                .then_some(())
        },
    )
    .await
    .unwrap();

    b.behavior.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let answers = burst(&url, 20, 2, |_| vec![]).await;
    assert_eq!(
        count(&answers, |a| a.body == "backend-a"),
        20,
        "{answers:?}"
    );
    b.behavior.set_healthy(true);
    wait::until(
        "backend-b SERVING again",
        Duration::from_secs(5),
        || async {
            burst(&url, 4, 1, |_| vec![])
                .await
                .iter()
                .any(|a| a.body == "backend-b")
                .then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_circuit_breaker_limit_get_503_at_once() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "five",
        "type: CircuitBreaker\nmesh: default\nname: five\nselector: { to: { service: backend } }\n\
         spec: { maxRequests: 5 }\n",
    )
    .await
    .unwrap();

    backend.behavior.set_delay(Duration::from_millis(1500));
    let answers = burst(&url, 9, 9, |_| vec![]).await;
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(refused.len(), 4, "{answers:?}");
    assert_eq!(count(&answers, |a| a.status == 200), 5, "{answers:?}");
    for a in refused {
        assert_eq!(a.weft_error.as_deref(), Some("overloaded"));
        assert!(
            a.elapsed < Duration::from_millis(700),
            "refused only after {:?}",
            a.elapsed
        );
    }
}
