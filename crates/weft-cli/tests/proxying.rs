//! Traffic through a real pair of Weft proxies (caller's outbound → callee's
//! inbound) with real clients: curl, a gRPC client with a bidirectional
//! stream, a WebSocket client, and raw TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_testkit::{
    ControlPlane, DataplaneSpec, Proxy, TestMesh,
    echo::{EchoRequest, echo_client::EchoClient},
    free_port, servers, wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

/// A backend proxy in front of `app_port` and a caller proxy with an
/// outbound to it; returns the proxies and the caller's outbound port.
async fn pair(
    mesh: &TestMesh,
    cp: &ControlPlane,
    protocol: &str,
    app_port: u16,
) -> (Proxy, Proxy, u16) {
    let backend = DataplaneSpec::new("backend-1", "backend", protocol, app_port);
    let backend = mesh.proxy(cp, &backend).await.unwrap();
    let mut caller = DataplaneSpec::new("web-1", "web", protocol, free_port());
    let outbound = caller.outbound("backend");
    let caller = mesh.proxy(cp, &caller).await.unwrap();
    (caller, backend, outbound)
}

async fn curl(args: &[&str]) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .arg("-sS")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until a request through the outbound reaches an app.
async fn wait_for_route(url: &str) {
    wait::until(
        &format!("a route through {url}"),
        Duration::from_secs(10),
        || async { servers::http_get(url).await.ok().filter(|(s, _)| *s == 200) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_keep_alive_and_chunked_bodies_with_curl() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::http_server("app").await;
    let (_caller, _backend, port) = pair(&mesh, &cp, "http", app.port).await;
    let base = format!("http://127.0.0.1:{port}");
    wait_for_route(&base).await;

    let (out, err) = curl(&["-v", &format!("{base}/a"), &format!("{base}/b")]).await;
    assert_eq!(out, "app GET /a\napp GET /b\n");
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing"),
        "keep-alive:\n{err}"
    );

    let body = "x".repeat(100_000);
    let file = mesh.dir.join("body.txt");
    std::fs::write(&file, &body).unwrap();
    let (out, err) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{base}/upload"),
    ])
    .await;
    assert_eq!(out, format!("app POST /upload\n{body}"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_two_backends() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (a, b) = (
        servers::http_server("a").await,
        servers::http_server("b").await,
    );
    let _pa = mesh
        .proxy(
            &cp,
            &DataplaneSpec::new("backend-a", "backend", "http", a.port),
        )
        .await
        .unwrap();
    let _pb = mesh
        .proxy(
            &cp,
            &DataplaneSpec::new("backend-b", "backend", "http", b.port),
        )
        .await
        .unwrap();
    let mut caller = DataplaneSpec::new("web-1", "web", "http", free_port());
    let port = caller.outbound("backend");
    let _caller = mesh.proxy(&cp, &caller).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    wait::until(
        "both backends in the balancer",
        Duration::from_secs(10),
        || async {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..4 {
                if let Ok((200, body)) = servers::http_get(&url).await {
                    seen.insert(body);
                }
            }
            (seen.len() == 2).then_some(())
        },
    )
    .await
    .unwrap();
    let mut counts = std::collections::HashMap::new();
    for _ in 0..20 {
        let (status, body) = servers::http_get(&url).await.unwrap();
        assert_eq!(status, 200);
        *counts.entry(body).or_insert(0) += 1;
    }
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [10, 10],
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_errors_and_bidirectional_streaming() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::grpc_echo_server("grpc-app").await;
    let (_caller, _backend, port) = pair(&mesh, &cp, "grpc", app.port).await;
    let url = format!("http://127.0.0.1:{port}");
    let mut client = wait::until("gRPC route", Duration::from_secs(10), || async {
        let mut c = EchoClient::connect(url.clone()).await.ok()?;
        c.unary(EchoRequest {
            message: "ping".into(),
        })
        .await
        .ok()?;
        Some(c)
    })
    .await
    .unwrap();

    let reply = client
        .unary(EchoRequest {
            message: "hello".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reply.message.as_str(), reply.server.as_str()),
        ("hello", "grpc-app")
    );
    let err = client
        .unary(EchoRequest {
            message: "fail".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::FailedPrecondition,
        "status travels in trailers: {err:?}"
    );
    assert_eq!(err.message(), "asked to fail");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = client
        .chat(tokio_stream_from(rx))
        .await
        .unwrap()
        .into_inner();
    for i in 0..5 {
        tx.send(EchoRequest {
            message: format!("m{i}"),
        })
        .await
        .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            reply.message,
            format!("m{i}"),
            "each message answered before the next is sent"
        );
    }
    drop(tx);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .unwrap()
            .is_none()
    );
}

fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<EchoRequest>,
) -> impl futures_util::Stream<Item = EchoRequest> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_through_both_proxies() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::websocket_echo_server().await;
    let (_caller, _backend, port) = pair(&mesh, &cp, "http", app.port).await;
    let url = format!("ws://127.0.0.1:{port}/chat");
    let (mut ws, _) = wait::until("WebSocket route", Duration::from_secs(10), || async {
        tokio_tungstenite::connect_async(url.as_str()).await.ok()
    })
    .await
    .unwrap();
    for text in ["hello", "through", "the mesh"] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp_echo() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::tcp_echo_server().await;
    let (_caller, _backend, port) = pair(&mesh, &cp, "tcp", app.port).await;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = wait::until("TCP route", Duration::from_secs(10), || async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(&payload).await.ok()?;
        s.shutdown().await.ok()?;
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back))
            .await
            .ok()?
            .ok()?;
        (!back.is_empty()).then_some(back)
    })
    .await
    .unwrap();
    assert!(
        echoed == payload,
        "echoed {} of {} bytes intact",
        echoed.len(),
        payload.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoints_means_prompt_503_or_closed_connection() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let mut caller = DataplaneSpec::new("web-1", "web", "http", free_port());
    let http_port = caller.outbound_with_protocol("nothing", "http");
    let tcp_port = caller.outbound("nothing-tcp");
    let _caller = mesh.proxy(&cp, &caller).await.unwrap();

    let started = std::time::Instant::now();
    let (status, body) = servers::http_get(&format!("http://127.0.0.1:{http_port}/"))
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("\"nothing\""), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed at once, not hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "connection closed: {n:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_with_curl() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::http_server("h2-app").await;
    let (_caller, _backend, port) = pair(&mesh, &cp, "http2", app.port).await;
    let url = format!("http://127.0.0.1:{port}/h2");
    let out = wait::until("HTTP/2 route", Duration::from_secs(10), || async {
        let (out, _) = curl(&["--http2-prior-knowledge", "-i", "-d", "payload", &url]).await;
        out.starts_with("HTTP/2 200").then_some(out)
    })
    .await
    .unwrap();
    assert!(out.ends_with("h2-app POST /h2\npayload"), "{out}");
}

/// Bytes that are not HTTP (or not gRPC) get an error or a closed
/// connection; a peer that stalls mid-frame blocks nobody else; and every
/// listener keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_on_every_listener_break_nothing() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::http_server("app").await;
    let (mut caller, mut backend, port) = pair(&mesh, &cp, "http", app.port).await;
    let url = format!("http://127.0.0.1:{port}/");
    wait_for_route(&url).await;
    let targets = [
        port,
        backend.spec.inbound_port,
        caller.spec.admin_port,
        cp.api_port,
        cp.dp_port,
    ];
    let malformed: &[&[u8]] = &[
        b"\x00\xff\x13garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
    ];
    let truncated_h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x09\x00";
    let mut stalled = Vec::new();
    for target in targets {
        for bytes in malformed {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", target))
                .await
                .unwrap();
            let _ = s.write_all(bytes).await;
            let mut sink = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut sink)).await;
            assert!(
                read.is_ok(),
                "port {target} kept a malformed connection open: {bytes:?}"
            );
        }
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", target))
            .await
            .unwrap();
        s.write_all(truncated_h2).await.unwrap();
        stalled.push(s);
    }
    // The stalled connections are still open while everything else works.
    assert!(
        caller.is_running() && backend.is_running(),
        "proxies survived"
    );
    let (status, body) = servers::http_get(&url).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "app GET /\n"));
    let out = mesh.cli(&cp, &["get", "meshes"]).await.unwrap();
    assert!(out.status.success());
    drop(stalled);
}
