//! Policies that shape where and how much traffic goes, with real traffic
//! through real proxies: TrafficRoute splits and header routes, ring-hash
//! balancing, RateLimit (HTTP and TCP) and FaultInjection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{collections::HashMap, time::Duration};

use tokio::net::TcpStream;
use weft_testkit::{
    TestMesh,
    load::{Answer, burst, count, paced},
    scenario::{echoes, wait_for_config},
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_route_splits_90_10_and_routes_a_header_to_v2() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let _v1 = mesh
        .backend(&cp, "backend-v1", "backend", &[("version", "v1")])
        .await
        .unwrap();
    let _v2 = mesh
        .backend(&cp, "backend-v2", "backend", &[("version", "v2")])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 2).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "canary",
        "type: TrafficRoute\nmesh: default\nname: canary\nselector: { to: { service: backend } }\n\
         spec:\n  rules:\n\
         \x20   - match: { headers: [ { name: x-canary, exact: \"yes\" } ] }\n\
         \x20     split: [ { weight: 1, tags: { version: v2 } } ]\n\
         \x20   - split: [ { weight: 90, tags: { version: v1 } }, { weight: 10, tags: { version: v2 } } ]\n",
    )
    .await
    .unwrap();

    let answers = burst(&url, 2000, 16, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 2000);
    let v2 = count(&answers, |a| a.body == "backend-v2");
    // 10 % ± 3 points of 2,000.
    assert!((140..=260).contains(&v2), "v2 got {v2} of 2000");
    let canary = burst(&url, 100, 8, |_| vec![("x-canary", "yes".to_owned())]).await;
    assert_eq!(
        count(&canary, |a| a.body == "backend-v2"),
        100,
        "{canary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_hash_keeps_a_header_value_on_one_endpoint() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let _backends = mesh
        .backends(&cp, "backend", &["backend-a", "backend-b", "backend-c"])
        .await
        .unwrap();
    let (caller, url) = mesh.caller(&cp, "backend", 3).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "sticky",
        "type: LoadBalancer\nmesh: default\nname: sticky\nselector: { to: { service: backend } }\n\
         spec: { type: ring-hash, hashOn: { header: x-user } }\n",
    )
    .await
    .unwrap();

    let users = 12;
    let answers = burst(&url, users * 20, 8, |i| {
        vec![("x-user", format!("user-{}", i % users))]
    })
    .await;
    let mut owners: HashMap<usize, std::collections::HashSet<String>> = HashMap::new();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200);
        owners.entry(i % users).or_default().insert(a.body.clone());
    }
    for (user, seen) in &owners {
        assert_eq!(seen.len(), 1, "user-{user} went to {seen:?}");
    }
    let used: std::collections::HashSet<&String> = owners.values().flatten().collect();
    assert!(used.len() >= 2, "every user landed on {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_steers_away_from_a_slow_endpoint() {
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
        "least",
        "type: LoadBalancer\nmesh: default\nname: least\nselector: { to: { service: backend } }\n\
         spec: { type: least-request }\n",
    )
    .await
    .unwrap();

    backends[1].behavior.set_delay(Duration::from_millis(400));
    let answers = burst(&url, 200, 8, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 200);
    // Round robin would send it half; least request only while it is as
    // idle as the fast one.
    let slow = count(&answers, |a| a.body == "backend-slow");
    assert!(slow < 30, "the slow endpoint got {slow} of 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_100_per_second_with_429_beyond() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, _caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(
        &cp,
        &backend.proxy,
        "hundred",
        "type: RateLimit\nmesh: default\nname: hundred\nselector: { to: { service: backend } }\n\
         spec: { requests: 100, interval: 1s }\n",
    )
    .await
    .unwrap();

    // 200 a second for 11.5 s: the first second empties the bucket (100 of
    // burst), the 10 s after it must pass 100 a second.
    let answers = paced(&url, 200, Duration::from_millis(11_500)).await;
    let window = |a: &&Answer| {
        a.sent_at >= Duration::from_millis(1500) && a.sent_at < Duration::from_millis(11_500)
    };
    let passed = answers
        .iter()
        .filter(window)
        .filter(|a| a.status == 200)
        .count();
    assert!((950..=1050).contains(&passed), "{passed} passed in 10 s");
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(limited.len() > 500, "only {} answered 429", limited.len());
    assert!(
        limited
            .iter()
            .all(|a| a.weft_error.as_deref() == Some("rate-limited")
                && a.retry_after.as_deref() == Some("1"))
    );
    assert_eq!(count(&answers, |a| a.status != 200 && a.status != 429), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_source_counts_only_that_caller_under_mtls() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    mesh.apply_ok(
        &cp,
        "type: Mesh\nname: default\nmtls: { mode: strict, ca: { type: builtin } }\n",
    )
    .await
    .unwrap();
    let backend = mesh
        .backend(&cp, "backend-1", "backend", &[])
        .await
        .unwrap();
    let (_web, web_url) = mesh
        .caller_as(&cp, ("web-1", "web"), "backend", 1)
        .await
        .unwrap();
    let (_api, api_url) = mesh
        .caller_as(&cp, ("api-1", "api"), "backend", 1)
        .await
        .unwrap();
    mesh.apply_policy(
        &cp,
        &backend.proxy,
        "web-five",
        "type: RateLimit\nmesh: default\nname: web-five\n\
         selector: { from: { service: web }, to: { service: backend } }\n\
         spec: { requests: 5, interval: 1m }\n",
    )
    .await
    .unwrap();

    let web = burst(&web_url, 8, 1, |_| vec![]).await;
    assert_eq!(count(&web, |a| a.status == 200), 5, "{web:?}");
    assert_eq!(count(&web, |a| a.status == 429), 3, "{web:?}");
    // Another caller has no limit of its own and is not counted in web's.
    let api = burst(&api_url, 8, 1, |_| vec![]).await;
    assert_eq!(count(&api, |a| a.status == 200), 8, "{api:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_closes_tcp_connections_over_the_limit() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (_echo, backend, _caller, port) = mesh.tcp_echo_pair(&cp).await.unwrap();
    mesh.apply_policy(
        &cp,
        &backend,
        "two-a-minute",
        "type: RateLimit\nmesh: default\nname: two-a-minute\nselector: { to: { service: echo } }\n\
         spec: { requests: 2, interval: 1m }\n",
    )
    .await
    .unwrap();

    let echoed = |n: u8| async move {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        echoes(&mut conn, n).await.then_some(n)
    };
    assert_eq!(echoed(1).await, Some(1));
    assert_eq!(echoed(2).await, Some(2));
    assert_eq!(
        echoed(3).await,
        None,
        "the third connection in a minute must be closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_aborts_and_delays_their_shares() {
    let mesh = TestMesh::new(BIN);
    let (cp, _backend, caller, url) = mesh.pair().await.unwrap();
    let policy = |spec: &str| {
        format!(
            "type: FaultInjection\nmesh: default\nname: chaos\nselector: {{ to: {{ service: backend }} }}\nspec: {spec}\n"
        )
    };
    mesh.apply_policy(
        &cp,
        &caller,
        "chaos",
        &policy("{ abort: { percentage: 50, httpStatus: 503 } }"),
    )
    .await
    .unwrap();

    let answers = burst(&url, 2000, 16, |_| vec![]).await;
    let aborted = count(&answers, |a| {
        a.status == 503 && a.weft_error.as_deref() == Some("fault-injected")
    });
    assert!((900..=1100).contains(&aborted), "{aborted} of 2000 aborted");
    assert_eq!(count(&answers, |a| a.status == 200) + aborted, 2000);

    mesh.apply_ok(&cp, &policy("{ delay: { percentage: 50, value: 300ms } }"))
        .await
        .unwrap();
    wait_for_config(&caller, "300ms", true).await.unwrap();
    let answers = burst(&url, 200, 20, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 200);
    let delayed = count(&answers, |a| a.elapsed >= Duration::from_millis(300));
    assert!((70..=130).contains(&delayed), "{delayed} of 200 delayed");
    // The others are not slowed down (a loaded machine may slow a few).
    let quick = count(&answers, |a| a.elapsed < Duration::from_millis(200));
    assert!(quick >= 60, "only {quick} of 200 were fast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_closes_connections_beyond_its_limit() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (_echo, _backend, caller, port) = mesh.tcp_echo_pair(&cp).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "two-at-once",
        "type: CircuitBreaker\nmesh: default\nname: two-at-once\nselector: { to: { service: echo } }\n\
         spec: { maxConnections: 2 }\n",
    )
    .await
    .unwrap();

    let connect = || TcpStream::connect(("127.0.0.1", port));
    let mut first = connect().await.unwrap();
    let mut second = connect().await.unwrap();
    assert!(echoes(&mut first, 1).await && echoes(&mut second, 2).await);
    let mut third = connect().await.unwrap();
    assert!(
        !echoes(&mut third, 3).await,
        "a third connection at once must be closed"
    );
    drop(first);
    let mut fourth = connect().await.unwrap();
    // The freed slot may take a moment to be noticed by the proxy.
    let mut ok = echoes(&mut fourth, 4).await;
    for _ in 0..20 {
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fourth = connect().await.unwrap();
        ok = echoes(&mut fourth, 4).await;
    }
    assert!(ok, "a connection after one closed must work");
    assert!(echoes(&mut second, 5).await);
}
