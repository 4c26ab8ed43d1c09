//! The Timeout policy on real connections through real proxies: 504 when
//! a request runs out of time; `idle` closes an HTTP connection with no
//! request in flight and a TCP connection with no bytes once idle for the
//! configured time, and not before. Also `weft inspect` and `weft get` for
//! policies, and a refused policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft_testkit::{TestMesh, load::burst, scenario::wait_for_config};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

/// Reads until the peer closes; returns how long that took from `since`.
async fn closed_after(conn: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("the connection was not closed within 5 s");
        match read {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

fn idle_policy(service: &str) -> String {
    format!(
        "type: Timeout\nmesh: default\nname: idle-{service}\nselector: {{ to: {{ service: {service} }} }}\n\
         spec: {{ idle: 700ms }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_connections_are_closed() {
    let mesh = TestMesh::new(BIN);
    let (cp, _backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(&cp, &caller, "idle-backend", &idle_policy("backend"))
        .await
        .unwrap();

    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: backend\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let answered = Instant::now();
    let after = closed_after(&mut conn, answered).await;
    assert!(
        after >= Duration::from_millis(600) && after < Duration::from_millis(2500),
        "closed {after:?} after the last response (idle: 700ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connections_are_closed() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (_echo, _backend, caller, port) = mesh.tcp_echo_pair(&cp).await.unwrap();
    mesh.apply_policy(&cp, &caller, "idle-echo", &idle_policy("echo"))
        .await
        .unwrap();

    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Bytes keep it open past the idle time…
    for _ in 0..4 {
        conn.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // …and silence closes it.
    let after = closed_after(&mut conn, Instant::now()).await;
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_millis(2500),
        "closed {after:?} after the last byte (idle: 700ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_answers_504_in_time_and_inspect_shows_policies() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "quick",
        "type: Timeout\nmesh: default\nname: quick\nselector: { from: { service: web }, to: { service: backend } }\n\
         spec: { request: 400ms }\n---\n\
         type: RateLimit\nmesh: default\nname: generous\nselector: { to: { service: backend } }\n\
         spec: { requests: 10000 }\n",
    )
    .await
    .unwrap();

    backend.behavior.set_delay(Duration::from_secs(3));
    let answers = burst(&url, 4, 4, |_| vec![]).await;
    for a in &answers {
        assert_eq!(a.status, 504, "{a:?}");
        assert_eq!(a.weft_error.as_deref(), Some("timeout"));
        assert!(
            a.elapsed >= Duration::from_millis(400) && a.elapsed < Duration::from_millis(1400),
            "504 after {:?}",
            a.elapsed
        );
    }
    backend.behavior.set_delay(Duration::ZERO);
    assert_eq!(burst(&url, 1, 1, |_| vec![]).await[0].status, 200);

    let out = mesh
        .cli(&cp, &["inspect", "dataplane", "web-1"])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Timeout/quick"), "{text}");
    let out = mesh
        .cli(&cp, &["inspect", "dataplane", "backend-1"])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("RateLimit/generous"), "{text}");
    let out = mesh.cli(&cp, &["get", "timeouts"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("quick"));

    // Deleted, it stops applying: the slow answer comes through.
    let out = mesh
        .cli(&cp, &["delete", "timeout", "quick"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_config(&caller, "quick", false).await.unwrap();
    backend.behavior.set_delay(Duration::from_millis(700));
    assert_eq!(burst(&url, 1, 1, |_| vec![]).await[0].status, 200);

    // A bad policy is refused with the field that is wrong.
    let out = mesh
        .apply(
            &cp,
            "type: Retry\nmesh: default\nname: bad\nspec: { attempts: 0 }\n",
        )
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.attempts: 0 is not 1-10"), "{err}");
}
