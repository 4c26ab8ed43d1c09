//! HTTP/1.1 through an outbound → inbound pair.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, channel::Channel};
use weft_api::Protocol;

use super::support::*;

#[tokio::test]
async fn get_keeps_method_path_and_host() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http, backend.addr).await;
    let mut client = h1_client(pair.outbound).await;
    let (status, headers, body) = get(&mut client, "/hello?x=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "a GET /hello host=backend.mesh");
    assert!(headers.get("x-weft-error").is_none());
}

#[tokio::test]
async fn post_body_is_streamed_chunk_by_chunk() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http, backend.addr).await;
    let mut client = h1_client(pair.outbound).await;
    let (mut chunks, body) = Channel::<Bytes, BoxError>::new(1);
    let req = Request::post("/echo")
        .header("host", "backend")
        .body(body.boxed())
        .unwrap();
    let response = tokio::spawn(async move { client.send_request(req).await });

    // Each chunk comes back before the next one is sent: nothing on the
    // way waits for the whole body.
    chunks
        .send_data(Bytes::from_static(b"first"))
        .await
        .unwrap();
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    assert_eq!(read_body_bytes(&mut body, 5).await, b"first");
    chunks
        .send_data(Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(read_body_bytes(&mut body, 6).await, b"second");
    drop(chunks);
    assert!(body.collect().await.unwrap().to_bytes().is_empty());
}

#[tokio::test]
async fn keep_alive_reuses_connections_on_both_hops() {
    let backend = Backend::start("a").await;
    let pair = pair(Protocol::Http, backend.addr).await;
    let mut client = h1_client(pair.outbound).await;
    for _ in 0..3 {
        let (status, _, body) = get(&mut client, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "a GET / host=backend.mesh");
    }
    assert_eq!(
        backend.connections(),
        1,
        "the inbound's pool should reuse its connection"
    );
}

#[tokio::test]
async fn no_endpoints_is_an_immediate_503() {
    let (outbound, _running) = start_outbound(Protocol::Http, &[]).await;
    let mut client = h1_client(outbound).await;
    let (status, headers, body) = get(&mut client, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "no healthy endpoints for service \"backend\"\n");
    assert_eq!(headers["x-weft-error"], "no-endpoints");
}

#[tokio::test]
async fn round_robin_alternates_between_two_backends() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (inbound_a, _ra) = start_inbound(Protocol::Http, a.addr).await;
    let (inbound_b, _rb) = start_inbound(Protocol::Http, b.addr).await;
    let (outbound, _ro) = start_outbound(Protocol::Http, &[inbound_a, inbound_b]).await;
    let mut client = h1_client(outbound).await;
    let mut names = Vec::new();
    for _ in 0..6 {
        let (_, _, body) = get(&mut client, "/").await;
        names.push(body[..1].to_owned());
    }
    // Per request, not per connection: one client connection alternates.
    assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 3, "{names:?}");
}

#[tokio::test]
async fn endpoint_swap_applies_to_the_next_request() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (inbound_a, _ra) = start_inbound(Protocol::Http, a.addr).await;
    let (inbound_b, _rb) = start_inbound(Protocol::Http, b.addr).await;
    let (outbound, running) = start_outbound(Protocol::Http, &[inbound_a]).await;
    let mut client = h1_client(outbound).await;
    assert!(get(&mut client, "/").await.2.starts_with("a "));
    running
        .route
        .update_endpoints(&endpoints_config(&[inbound_b]));
    assert!(get(&mut client, "/").await.2.starts_with("b "));
    running.route.update_endpoints(&[]);
    assert_eq!(
        get(&mut client, "/").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn bodiless_request_fails_over_to_the_next_endpoint() {
    let a = Backend::start("a").await;
    let (inbound_a, _ra) = start_inbound(Protocol::Http, a.addr).await;
    let dead = free_addr();
    let (outbound, _ro) = start_outbound(Protocol::Http, &[dead, inbound_a]).await;
    let mut client = h1_client(outbound).await;
    // Round robin starts once on each endpoint; both requests must land.
    for _ in 0..2 {
        let (status, _, body) = get(&mut client, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "a GET / host=backend.mesh");
    }
}

#[tokio::test]
async fn request_with_body_is_not_replayed_and_gets_502() {
    let dead = free_addr();
    let (outbound, _ro) = start_outbound(Protocol::Http, &[dead]).await;
    let mut client = h1_client(outbound).await;
    let req = Request::post("/echo")
        .header("host", "backend")
        .body(full("payload"))
        .unwrap();
    let (status, headers, body) = read(client.send_request(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "connect-failed");
    assert!(
        body.starts_with(&format!(
            "cannot connect to service \"backend\" at endpoint {dead}: "
        )),
        "{body}"
    );
}

#[tokio::test]
async fn inbound_without_its_service_answers_502() {
    let (inbound, _ri) = start_inbound(Protocol::Http, free_addr()).await;
    let mut client = h1_client(inbound).await;
    let (status, headers, body) = get(&mut client, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-weft-error"], "connect-failed");
    assert!(body.contains("service \"backend\""), "{body}");
}
