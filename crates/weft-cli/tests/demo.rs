//! `weft demo` end to end: it starts, traffic flows through three services,
//! and it leaves no process behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{net::TcpListener, time::Duration};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_traffic_and_cleans_up() {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(BIN)
            .args(["demo", "--exit-after-traffic"])
            .output(),
    )
    .await
    .expect("demo finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for instance in ["frontend-1", "backend-1", "backend-2", "store-1"] {
        assert!(
            stdout.contains(&format!("\"service\":\"{instance}\"")),
            "{instance} answered:\n{stdout}"
        );
    }
    assert!(stdout.contains("weft get dataplanes"), "{stdout}");
    // Every port the demo used is free again: no process was left behind.
    for port in [
        5681, 5678, 8081, 8082, 8083, 8084, 20001, 20002, 20003, 20004, 9901, 9902, 9903, 9904,
    ] {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still in use"
        );
    }
}
