//! HTTP/2 and gRPC-style traffic through an outbound → inbound pair.

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
