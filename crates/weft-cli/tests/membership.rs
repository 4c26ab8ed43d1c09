//! Membership and control-plane outages under steady traffic: backends join
//! and leave, proxies vanish, the control plane dies and comes back — and
//! callers see no failed request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use weft_testkit::{
    ControlPlane, DataplaneSpec, Proxy, TestMesh, free_port, servers, traffic::Traffic, wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

async fn backend(mesh: &TestMesh, cp: &ControlPlane, name: &str, app_port: u16) -> Proxy {
    mesh.proxy(cp, &DataplaneSpec::new(name, "backend", "http", app_port))
        .await
        .unwrap()
}

async fn caller(mesh: &TestMesh, cp: &ControlPlane) -> (Proxy, String) {
    let mut spec = DataplaneSpec::new("web-1", "web", "http", free_port());
    let port = spec.outbound("backend");
    (
        mesh.proxy(cp, &spec).await.unwrap(),
        format!("http://127.0.0.1:{port}/"),
    )
}

async fn wait_for_answers(traffic: &Traffic, n: usize) {
    let base = traffic.count();
    wait::until("more answers", Duration::from_secs(10), || async {
        (traffic.count() >= base + n).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_join_and_leave_under_steady_traffic() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (a, b) = (
        servers::http_server("a").await,
        servers::http_server("b").await,
    );
    let mut pa = backend(&mesh, &cp, "backend-a", a.port).await;
    let (_caller, url) = caller(&mesh, &cp).await;
    wait::until("route", Duration::from_secs(10), || async {
        servers::http_get(&url)
            .await
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .await
    .unwrap();

    let traffic = Traffic::start(url);
    wait_for_answers(&traffic, 50).await;

    // Join: the new backend gets traffic within a second of being ready.
    let _pb = backend(&mesh, &cp, "backend-b", b.port).await;
    let ready = Instant::now();
    let first = wait::until(
        "traffic to the new backend",
        Duration::from_secs(5),
        || async { traffic.first_answer_from("b") },
    )
    .await
    .unwrap();
    let delay = first.saturating_duration_since(ready);
    assert!(
        delay <= Duration::from_secs(1),
        "new backend waited {delay:?} for traffic"
    );

    // Leave: stopping a backend's proxy fails no request.
    wait_for_answers(&traffic, 50).await;
    assert!(pa.stop().await, "clean stop:\n{}", pa.log());
    let left = Instant::now();
    wait_for_answers(&traffic, 200).await;
    let seen = traffic.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{} failed requests: {:?}",
        seen.failures.len(),
        &seen.failures[..seen.failures.len().min(5)]
    );
    let late_a = seen
        .answers
        .iter()
        .filter(|(t, app)| *t > left + Duration::from_secs(1) && app == "a")
        .count();
    assert_eq!(
        late_a, 0,
        "the stopped backend got no traffic after a second"
    );

    let dps = mesh.cli(&cp, &["get", "dataplanes"]).await.unwrap();
    let table = String::from_utf8_lossy(&dps.stdout);
    assert!(
        !table.contains("backend-a"),
        "a cleanly stopped proxy deregisters:\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_proxy_goes_offline_and_leaves_the_balancer() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (a, b) = (
        servers::http_server("a").await,
        servers::http_server("b").await,
    );
    let mut pa = backend(&mesh, &cp, "backend-a", a.port).await;
    let _pb = backend(&mesh, &cp, "backend-b", b.port).await;
    let (_caller, _url) = caller(&mesh, &cp).await;

    pa.kill().await;
    let killed = Instant::now();
    wait::until(
        "backend-a offline and out of web-1's endpoints",
        Duration::from_secs(5),
        || async {
            let out = mesh
                .cli(&cp, &["inspect", "dataplane", "web-1", "-o", "json"])
                .await
                .ok()?;
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let endpoints = status["outbounds"][0]["endpoints"].as_array()?.clone();
            let acked = status["configVersionAcked"] == status["configVersionSent"];
            (acked && endpoints.len() == 1 && endpoints[0]["dataplane"] == "backend-b")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "took {:?}",
        killed.elapsed()
    );
    let table =
        String::from_utf8_lossy(&mesh.cli(&cp, &["get", "dataplanes"]).await.unwrap().stdout)
            .into_owned();
    let row = table
        .lines()
        .find(|l| l.contains("backend-a"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.contains("offline"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_outage_fails_no_request_and_resyncs() {
    let mesh = TestMesh::new(BIN);
    let mut cp = mesh.control_plane().await.unwrap();
    let (a, b) = (
        servers::http_server("a").await,
        servers::http_server("b").await,
    );
    let _pa = backend(&mesh, &cp, "backend-a", a.port).await;
    let (_caller, url) = caller(&mesh, &cp).await;
    wait::until("route", Duration::from_secs(10), || async {
        servers::http_get(&url)
            .await
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .await
    .unwrap();
    let traffic = Traffic::start(url);
    wait_for_answers(&traffic, 50).await;

    cp.kill().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_for_answers(&traffic, 100).await;
    cp.start().await.unwrap();

    // Resync: every proxy is back online and acknowledged, and a change made
    // after the restart reaches the caller.
    wait::until("proxies reconnected", Duration::from_secs(15), || async {
        let out = mesh
            .cli(&cp, &["inspect", "dataplane", "web-1", "-o", "json"])
            .await
            .ok()?;
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (s["online"] == true && s["configVersionAcked"] == s["configVersionSent"]).then_some(())
    })
    .await
    .unwrap();
    let _pb = backend(&mesh, &cp, "backend-b", b.port).await;
    wait::until(
        "traffic to a backend added after the restart",
        Duration::from_secs(5),
        || async { traffic.first_answer_from("b") },
    )
    .await
    .unwrap();
    wait_for_answers(&traffic, 50).await;
    let seen = traffic.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{} failed requests: {:?}",
        seen.failures.len(),
        &seen.failures[..seen.failures.len().min(5)]
    );
}
