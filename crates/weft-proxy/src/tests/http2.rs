//! HTTP/2 and gRPC-style traffic through an outbound → inbound pair.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, channel::Channel};
use weft_api::Protocol;

use super::support::*;

#[tokio::test]
async fn trailers_reach_the_client() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Grpc, backend.addr).await;
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
}

#[tokio::test]
async fn authority_is_preserved() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http2, backend.addr).await;
    let mut client = h2_client(pair.outbound).await;
    let req = Request::get("http://backend.mesh:8080/who")
        .body(empty())
        .unwrap();
    let (status, _, body) = read(client.send_request(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "a GET /who host=backend.mesh:8080");
}

#[tokio::test]
async fn bidirectional_stream_flows_both_ways_at_once() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Grpc, backend.addr).await;
    let mut client = h2_client(pair.outbound).await;
    let (mut messages, body) = Channel::<Bytes, BoxError>::new(1);
    let req = Request::post("http://backend.mesh/echo")
        .header("content-type", "application/grpc")
        .body(body.boxed())
        .unwrap();
    let response = client.send_request(req).await.unwrap();
    let mut replies = response.into_body();
    for message in ["one", "two", "three"] {
        messages.send_data(Bytes::from(message)).await.unwrap();
        assert_eq!(
            read_body_bytes(&mut replies, message.len()).await,
            message.as_bytes()
        );
    }
    drop(messages);
    assert!(replies.collect().await.unwrap().to_bytes().is_empty());
}

#[tokio::test]
async fn http1_client_reaches_an_http2_service() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http2, backend.addr).await;
    let mut client = h1_client(pair.outbound).await;
    let (status, _, body) = get(&mut client, "/mixed").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "a GET /mixed host=backend.mesh");
}

/// hyper's HTTP/2 client consumes a request it cannot send, so the
/// forwarder keeps a copy of a bodiless one to try the next endpoint with.
#[tokio::test]
async fn bodiless_request_fails_over_to_the_next_http2_endpoint() {
    let a = Backend::start("a").await;
    let (inbound_a, _ra) = start_inbound(Protocol::Http2, a.addr).await;
    let dead = free_addr();
    let (outbound, _ro) = start_outbound(Protocol::Http2, &[dead, inbound_a]).await;
    let mut client = h2_client(outbound).await;
    // Round robin starts once on each endpoint; both requests must land.
    for _ in 0..2 {
        let req = Request::get("http://backend.mesh/again")
            .body(empty())
            .unwrap();
        let (status, _, body) = read(client.send_request(req).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "a GET /again host=backend.mesh");
    }
}

#[tokio::test]
async fn many_concurrent_streams_share_the_connection() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http2, backend.addr).await;
    let client = h2_client(pair.outbound).await;
    let requests = (0..20).map(|i| {
        let mut client = client.clone();
        async move {
            let req = Request::get(format!("http://backend.mesh/{i}"))
                .body(empty())
                .unwrap();
            read(client.send_request(req).await.unwrap()).await
        }
    });
    for (i, (status, _, body)) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("a GET /{i} host=backend.mesh"));
    }
    assert_eq!(
        backend.connections(),
        1,
        "HTTP/2 multiplexes on one connection"
    );
}

/// An upstream that accepts connections and never sends a byte, like a
/// host that vanished without a FIN or RST.
async fn black_hole() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn a_request_to_a_vanished_peer_fails_within_the_keepalive() {
    let (outbound, _running) = start_outbound(Protocol::Http2, &[black_hole().await]).await;
    let mut client = h1_client(outbound).await;
    let started = tokio::time::Instant::now();
    let (status, headers, body) =
        tokio::time::timeout(Duration::from_secs(120), get(&mut client, "/"))
            .await
            .expect("an answer long before TCP would give up");
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "upstream-failed");
    assert!(body.contains("keep-alive timed out"), "{body}");
    // A ping 20 s after the last frame read, 20 s to answer it.
    assert!(
        started.elapsed() <= Duration::from_secs(41),
        "{:?}",
        started.elapsed()
    );
}
