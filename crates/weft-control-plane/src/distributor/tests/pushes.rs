//! When configs are pushed: only on change, the startup grace, shutdown.

use super::*;

#[tokio::test]
async fn only_changed_configs_are_sent() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut web = h.connect(caller()).await.unwrap();
    let first = web.next_config().await;
    // A write that does not concern web-1's config: no new version.
    h.store
        .apply(vec![Change::Upsert(mesh("other"))])
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), web.configs.message()).await;
    assert!(quiet.is_err(), "unexpected config: {quiet:?}");
    // One that does: exactly one new version.
    h.store
        .apply(vec![Change::Upsert(resource(backend("backend-a", 20010)))])
        .await
        .unwrap();
    let next = web.next_config().await;
    assert!(next.version > first.version);
    assert_eq!(
        next.outbounds[0].protocol(),
        weft_api::proto::Protocol::Http
    );
    assert!(
        endpoint_names(&next).is_empty(),
        "stored but never connected"
    );
}

#[tokio::test]
async fn stored_dataplanes_count_as_online_during_the_startup_grace() {
    let grace = Duration::from_millis(400);
    let seed = vec![Change::Upsert(resource(backend("backend-a", 20010)))];
    let h = Harness::start(grace, seed).await;
    let mut web = h.connect(caller()).await.unwrap();
    let config = web.next_config().await;
    assert_eq!(endpoint_names(&config), ["backend-a"], "presumed online");
    // Nobody reconnected for backend-a: it leaves when the grace ends.
    let after = tokio::time::timeout(grace + PROMPTLY, web.configs.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(endpoint_names(&after).is_empty());
}

#[tokio::test]
async fn a_proxy_that_leaves_during_the_grace_is_not_presumed_any_more() {
    let seed = vec![Change::Upsert(resource(backend("backend-a", 20010)))];
    let h = Harness::start(Duration::from_secs(60), seed).await;
    let mut web = h.connect(caller()).await.unwrap();
    web.config_where(|c| endpoint_names(c) == ["backend-a"])
        .await;
    let mut a = h.connect(backend("backend-a", 20010)).await.unwrap();
    a.next_config().await;
    drop(a);
    web.config_where(|c| endpoint_names(c).is_empty()).await;
}

#[tokio::test]
async fn shutdown_ends_every_stream() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut web = h.connect(caller()).await.unwrap();
    web.next_config().await;
    h.distributor.shutdown().await;
    let end = tokio::time::timeout(PROMPTLY, web.configs.message())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[test]
fn versions_grow_and_stay_above_what_proxies_run() {
    let v = Versions::from_clock();
    let a = v.next();
    assert!(a > 1_600_000_000_000, "seeded from unix milliseconds");
    assert_eq!(v.next(), a + 1);
    v.observe(a + 100);
    assert_eq!(v.next(), a + 101);
    v.observe(5);
    assert_eq!(v.next(), a + 102);
}

#[test]
fn a_reported_version_far_above_the_clock_is_ignored() {
    let v = Versions::from_clock();
    let a = v.next();
    assert!(!v.observe(u64::MAX));
    assert!(!v.observe(a + (1 << 41)));
    assert_eq!(v.next(), a + 1, "no wrap");
    assert!(v.observe(a + 1_000_000), "a busy previous control plane");
    assert_eq!(v.next(), a + 1_000_001);
}

#[tokio::test]
async fn a_proxy_reporting_a_huge_running_version_gets_sane_versions() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut message = hello(caller(), "");
    if let Some(proxy_message::Kind::Hello(hello)) = &mut message.kind {
        hello.running_version = u64::MAX;
    }
    let mut web = h.open(message).await.unwrap();
    let first = web.next_config().await;
    assert!(
        first.version > 1_600_000_000_000 && first.version < 1 << 50,
        "{}",
        first.version
    );
    h.store
        .apply(vec![Change::Upsert(resource(backend("backend-a", 20010)))])
        .await
        .unwrap();
    assert!(web.next_config().await.version > first.version);
}
