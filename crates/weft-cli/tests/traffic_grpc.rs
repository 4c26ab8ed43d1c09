//! Retry for gRPC through real proxies: a call whose status is one of the
//! policy's gRPC codes is tried again (its unsized HTTP/2 body buffered for
//! that); a successful call is not, and bodies past the buffer limit still
//! arrive whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use weft_testkit::{DataplaneSpec, TestMesh, echo::EchoRequest, free_port, servers};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

/// The caller's count of retries for `backend`.
async fn retries(admin_metrics: &str) -> u64 {
    let (_, text) = servers::http_get(admin_metrics).await.unwrap();
    text.lines()
        .find(|l| l.starts_with("weft_policy_events_total{service=\"backend\",event=\"retry\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_status_codes_are_retried_when_listed() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let app = servers::grpc_echo_server("grpc-app").await;
    let _backend = mesh
        .proxy(
            &cp,
            &DataplaneSpec::new("backend-1", "backend", "grpc", app.port),
        )
        .await
        .unwrap();
    let mut spec = DataplaneSpec::new("web-1", "web", "grpc", free_port());
    let port = spec.outbound("backend");
    let caller = mesh.proxy(&cp, &spec).await.unwrap();
    mesh.apply_policy(
        &cp,
        &caller,
        "grpc-retry",
        "type: Retry\nmesh: default\nname: grpc-retry\nselector: { to: { service: backend } }\n\
         spec: { attempts: 3, retryOn: [reset], grpcStatusCodes: [failed-precondition], \
         budget: { percent: 100 }, backoff: { base: 1ms, max: 2ms } }\n",
    )
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut client = servers::echo_client(&url).await.unwrap();
    let metrics = caller.admin_url("/metrics");
    let before = retries(&metrics).await;

    // The echo app answers "fail" with FAILED_PRECONDITION every time: all
    // three tries fail, and the caller gets the app's status.
    let err = client
        .unary(EchoRequest {
            message: "fail".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        retries(&metrics).await - before,
        2,
        "two retries after the first try"
    );

    // A successful call is not retried, and its body arrives whole.
    let reply = client
        .unary(EchoRequest {
            message: "x".repeat(10_000),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message.len(), 10_000);
    // Past the 64 KiB buffer limit a body is streamed on as it comes.
    let reply = client
        .unary(EchoRequest {
            message: "y".repeat(200_000),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message.len(), 200_000);
    assert_eq!(retries(&metrics).await - before, 2);
}
