//! Mutual TLS between an outbound and an inbound, each with its own
//! identity from a test CA: the three protocols, the modes, refused peers,
//! and certificate swaps under open connections.

use std::{sync::atomic::Ordering, time::Duration};

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft_api::Protocol;

use super::{
    ca::{TestCa, identity, mtls},
    logs::Logs,
    support::*,
};
use crate::{config::MtlsMode, tls::Identity};

const WEB: &str = "spiffe://default/web";

/// The caller (`web`) and the callee (`backend`) of one CA, in `mode`.
fn web_and_backend(mode: MtlsMode) -> (std::sync::Arc<Identity>, std::sync::Arc<Identity>) {
    let ca = TestCa::new("mesh CA");
    (identity(&ca, "web", mode), identity(&ca, "backend", mode))
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Waits until `stream` is closed by the other side (EOF or reset).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 64];
    // The bound only keeps a broken proxy from hanging the test.
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn http1_over_strict_mtls_carries_the_callers_identity() {
    let (logs, _guard) = Logs::capture();
    let (web, backend_id) = web_and_backend(MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &backend_id).await;
    let mut client = h1_client(pair.outbound).await;
    for _ in 0..2 {
        let (status, _, body) = get(&mut client, "/hello").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "a GET /hello host=backend.mesh");
    }
    let stats = backend_id.stats();
    assert_eq!(count(&stats.inbound_mtls), 1, "one pooled mTLS connection");
    assert_eq!(count(&stats.inbound_plaintext), 0);
    let seen = logs.lines_with(&["inbound request", &format!("peer={WEB}"), "path=\"/hello\""]);
    assert_eq!(seen.len(), 2, "{}", logs.text());
}

#[tokio::test]
async fn http2_with_trailers_over_strict_mtls() {
    let (logs, _guard) = Logs::capture();
    let (web, backend_id) = web_and_backend(MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Grpc, backend.addr, &web, &backend_id).await;
    let mut client = h2_client(pair.outbound).await;
    let req = Request::post("http://backend.mesh/trailers")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(empty())
        .unwrap();
    let response = client.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "hello");
    assert_eq!(count(&backend_id.stats().inbound_mtls), 1);
    assert_eq!(
        logs.lines_with(&["inbound request", &format!("peer={WEB}")])
            .len(),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn tcp_over_strict_mtls() {
    let (logs, _guard) = Logs::capture();
    let (web, backend_id) = web_and_backend(MtlsMode::Strict);
    let backend = tcp_backend("a").await;
    let pair = pair_with(Protocol::Tcp, backend, &web, &backend_id).await;
    let mut stream = TcpStream::connect(pair.outbound).await.unwrap();
    assert_eq!(read_text(&mut stream, 1).await, "a");
    stream.write_all(b"hello through mTLS").await.unwrap();
    assert_eq!(read_text(&mut stream, 18).await, "hello through mTLS");
    assert_eq!(count(&backend_id.stats().inbound_mtls), 1);
    assert_eq!(
        logs.lines_with(&["inbound TCP connection", &format!("peer={WEB}")])
            .len(),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn strict_refuses_a_plaintext_client() {
    let (_, backend_id) = web_and_backend(MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let (inbound, _running) = start_inbound_with(Protocol::Http, backend.addr, &backend_id).await;
    let mut stream = TcpStream::connect(inbound).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: backend\r\n\r\n")
        .await
        .unwrap();
    assert!(closed(&mut stream).await, "plaintext must be closed");
    assert_eq!(count(&backend_id.stats().plaintext_refused), 1);
    assert_eq!(backend.connections(), 0, "nothing reached the app");
}

#[tokio::test]
async fn permissive_serves_plaintext_and_mtls_on_one_port() {
    let (logs, _guard) = Logs::capture();
    let (web, backend_id) = web_and_backend(MtlsMode::Permissive);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &backend_id).await;

    let mut through_mesh = h1_client(pair.outbound).await;
    assert_eq!(get(&mut through_mesh, "/mtls").await.0, StatusCode::OK);
    let mut direct = h1_client(pair.inbound).await;
    assert_eq!(get(&mut direct, "/plain").await.0, StatusCode::OK);

    let stats = backend_id.stats();
    assert_eq!(count(&stats.inbound_mtls), 1);
    assert_eq!(count(&stats.inbound_plaintext), 1);
    assert_eq!(
        logs.lines_with(&["inbound request", &format!("peer={WEB}"), "/mtls"])
            .len(),
        1
    );
    assert_eq!(
        logs.lines_with(&["inbound request", "peer=plaintext", "/plain"])
            .len(),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_silent_client_in_permissive_mode_is_served_as_plaintext() {
    let (_, backend_id) = web_and_backend(MtlsMode::Permissive);
    let backend = tcp_backend("a").await;
    let (inbound, _running) = start_inbound_with(Protocol::Tcp, backend, &backend_id).await;
    // A server-speaks-first app: the client sends nothing and waits.
    let mut stream = TcpStream::connect(inbound).await.unwrap();
    assert_eq!(read_text(&mut stream, 1).await, "a");
    assert_eq!(count(&backend_id.stats().inbound_plaintext), 1);
}

#[tokio::test]
async fn off_stays_plaintext() {
    let (web, backend_id) = web_and_backend(MtlsMode::Off);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &backend_id).await;
    let mut client = h1_client(pair.outbound).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::OK);
    assert_eq!(count(&backend_id.stats().inbound_plaintext), 1);
    assert_eq!(count(&backend_id.stats().inbound_mtls), 0);

    // A caller that insists on mTLS does not get it.
    let strict_web = {
        let ca = TestCa::new("other");
        identity(&ca, "web", MtlsMode::Strict)
    };
    let (outbound, _running) =
        start_outbound_with(Protocol::Http, &[pair.inbound], &strict_web).await;
    let mut client = h1_client(outbound).await;
    assert_eq!(get(&mut client, "/").await.0, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_caller_with_a_certificate_of_another_ca_is_refused() {
    let ca = TestCa::new("mesh CA");
    let backend_id = identity(&ca, "backend", MtlsMode::Strict);
    // Trusts the mesh CA, so it accepts the server, but presents a
    // certificate of another CA.
    let intruder = Identity::new("default");
    intruder.store_credentials(TestCa::new("rogue CA").credentials("web", Duration::from_secs(60)));
    intruder.apply(&mtls(MtlsMode::Strict, &ca));

    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &intruder, &backend_id).await;
    let mut client = h1_client(pair.outbound).await;
    let (status, headers, body) = get(&mut client, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(headers.contains_key("x-weft-error"));
    assert_eq!(count(&backend_id.stats().inbound_handshake_failures), 1);
    assert_eq!(count(&backend_id.stats().inbound_mtls), 0);
    assert_eq!(backend.connections(), 0);
}

#[tokio::test]
async fn a_server_with_a_certificate_of_another_ca_is_refused() {
    let (logs, _guard) = Logs::capture();
    let web = identity(&TestCa::new("mesh CA"), "web", MtlsMode::Strict);
    let impostor = identity(&TestCa::new("rogue CA"), "backend", MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &impostor).await;
    let mut client = h1_client(pair.outbound).await;
    let (status, headers, body) = get(&mut client, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "connect-failed");
    assert!(
        body.contains("invalid peer certificate: UnknownIssuer"),
        "{body}"
    );
    assert_eq!(count(&web.stats().outbound_handshake_failures), 1);
    assert_eq!(backend.connections(), 0);
    assert_eq!(
        logs.lines_with(&["cannot connect to upstream", "UnknownIssuer"])
            .len(),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_peer_of_the_wrong_service_fails_http_with_502() {
    let (logs, _guard) = Logs::capture();
    let ca = TestCa::new("mesh CA");
    let web = identity(&ca, "web", MtlsMode::Strict);
    let other = identity(&ca, "other", MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &other).await;
    let mut client = h1_client(pair.outbound).await;
    let (status, headers, body) = get(&mut client, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "connect-failed");
    let expected = "peer is spiffe://default/other, expected spiffe://default/backend";
    assert!(body.contains(expected), "{body}");
    assert_eq!(backend.connections(), 0);
    let lines = logs.lines_with(&["WARN", "cannot connect to upstream", expected]);
    assert_eq!(lines.len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn a_peer_of_the_wrong_service_closes_tcp() {
    let (logs, _guard) = Logs::capture();
    let ca = TestCa::new("mesh CA");
    let web = identity(&ca, "web", MtlsMode::Strict);
    let other = identity(&ca, "other", MtlsMode::Strict);
    let backend = tcp_backend("a").await;
    let pair = pair_with(Protocol::Tcp, backend, &web, &other).await;
    let mut stream = TcpStream::connect(pair.outbound).await.unwrap();
    assert!(closed(&mut stream).await);
    let expected = "peer is spiffe://default/other, expected spiffe://default/backend";
    let lines = logs.lines_with(&["WARN", "cannot connect to endpoint", expected]);
    assert_eq!(lines.len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn a_mode_change_applies_to_new_connections_only() {
    let (web, backend_id) = web_and_backend(MtlsMode::Permissive);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http, backend.addr, &web, &backend_id).await;
    let mut plaintext = h1_client(pair.inbound).await;
    assert_eq!(get(&mut plaintext, "/").await.0, StatusCode::OK);

    let mut strict = (*backend_id.settings()).clone();
    strict.mode = MtlsMode::Strict;
    backend_id.apply(&strict);
    assert_eq!(
        get(&mut plaintext, "/").await.0,
        StatusCode::OK,
        "the open plaintext connection continues"
    );
    let mut refused = TcpStream::connect(pair.inbound).await.unwrap();
    refused.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed(&mut refused).await);
    let mut through_mesh = h1_client(pair.outbound).await;
    assert_eq!(get(&mut through_mesh, "/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_new_certificate_leaves_open_connections_alone() {
    let ca = TestCa::new("mesh CA");
    let web = identity(&ca, "web", MtlsMode::Strict);
    let backend_id = identity(&ca, "backend", MtlsMode::Strict);
    let backend = Backend::start("a").await;
    let pair = pair_with(Protocol::Http2, backend.addr, &web, &backend_id).await;
    let mut client = h2_client(pair.outbound).await;
    let get2 = |path: &'static str| {
        Request::get(format!("http://backend.mesh{path}"))
            .body(empty())
            .unwrap()
    };
    assert_eq!(
        client.send_request(get2("/1")).await.unwrap().status(),
        StatusCode::OK
    );

    let before = backend_id.credentials().unwrap();
    backend_id.store_credentials(ca.credentials("backend", Duration::from_secs(3600)));
    web.store_credentials(ca.credentials("web", Duration::from_secs(3600)));
    assert!(!std::ptr::eq(
        before.as_ref(),
        backend_id.credentials().unwrap().as_ref()
    ));

    assert_eq!(
        client.send_request(get2("/2")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        count(&backend_id.stats().inbound_mtls),
        1,
        "the pooled connection was kept"
    );
    // A new connection (a new pool: another client) uses the new ones.
    let (outbound, _running) = start_outbound_with(Protocol::Http2, &[pair.inbound], &web).await;
    let mut other = h2_client(outbound).await;
    assert_eq!(
        other.send_request(get2("/3")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(count(&backend_id.stats().inbound_mtls), 2);
}
