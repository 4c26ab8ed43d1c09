//! `weft-proxy`, the proxy-only executable, in a strict-mTLS mesh: both
//! proxies of a pair run it single-threaded (`--workers 1`, tokio's
//! current-thread runtime), carry HTTP/1.1 and TCP traffic, and
//! apply a Retry policy, as `weft proxy` does.
//!
//! The control plane is the `weft` binary, which the workspace's test run
//! builds (weft-cli has integration tests); it sits beside `weft-proxy`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{path::PathBuf, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft_testkit::{
    DataplaneSpec, Proxy, TestMesh, free_port,
    load::{burst, count},
    servers,
};

const PROXY: &str = env!("CARGO_BIN_EXE_weft-proxy");

/// The all-in-one `weft` binary, for the control plane and the CLI.
fn weft() -> String {
    let path = PathBuf::from(PROXY).with_file_name("weft");
    assert!(
        path.is_file(),
        "{} is missing: run the workspace's tests (cargo nextest run --workspace), \
         or build it first (cargo build -p weft-cli)",
        path.display()
    );
    path.display().to_string()
}

/// Threads named by tokio's multi-thread runtime: none on a current-thread one.
fn runtime_worker_threads(proxy: &Proxy) -> usize {
    let pid = proxy.pid().expect("the proxy runs");
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "tokio-runtime-w")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_threaded_weft_proxy_carries_mtls_traffic_and_policies() {
    let mesh = TestMesh::new(&weft()).with_proxy_command(&[PROXY, "--workers", "1"]);
    let (cp, backend, caller, url) = mesh.strict_mtls_pair().await.unwrap();
    let echo = servers::tcp_echo_server().await;
    let echo_proxy = mesh
        .proxy(&cp, &DataplaneSpec::new("echo-1", "echo", "tcp", echo.port))
        .await
        .unwrap();
    let mut spec = DataplaneSpec::new("tcp-caller-1", "tcp-caller", "tcp", free_port());
    let tcp_port = spec.outbound("echo");
    let tcp_caller = mesh.proxy(&cp, &spec).await.unwrap();
    for proxy in [&backend.proxy, &caller, &echo_proxy, &tcp_caller] {
        assert_eq!(
            runtime_worker_threads(proxy),
            0,
            "{} should run on a current-thread runtime",
            proxy.spec.name
        );
    }

    // HTTP/1.1 over mTLS, 16 at a time through one thread per proxy.
    let served_before = backend.behavior.requests();
    let answers = burst(&url, 400, 16, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 400);
    assert_eq!(backend.behavior.requests() - served_before, 400);

    // A Retry policy reaches the single-threaded caller and is applied.
    mesh.apply_policy(&cp, &caller, "retry-5xx", weft_testkit::scenario::RETRY_5XX)
        .await
        .unwrap();
    backend.behavior.set_fail_percent(20);
    let answers = burst(&url, 400, 16, |_| vec![]).await;
    let ok = count(&answers, |a| a.status == 200);
    assert!(ok >= 398, "success {ok}/400 with retries");
    backend.behavior.set_fail_percent(0);

    // Opaque TCP over mTLS.
    let mut conn = TcpStream::connect(("127.0.0.1", tcp_port)).await.unwrap();
    conn.write_all(b"weft over one thread").await.unwrap();
    let mut echoed = [0u8; 20];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut echoed))
        .await
        .expect("the echo comes back")
        .unwrap();
    assert_eq!(&echoed, b"weft over one thread");
}

/// jemalloc reads its options at the first allocation and, rather than
/// failing, names any it does not understand on stderr and ignores it.
#[test]
fn the_allocator_accepts_every_option_the_proxy_sets() {
    let output = std::process::Command::new(PROXY)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("<jemalloc>"), "{stderr}");
}
