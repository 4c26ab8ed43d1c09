//! The HTTP/1.1 pool against a real hyper server on loopback that counts
//! the connections it accepts.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::{Request, header::CONNECTION};
use http_body_util::{BodyExt, Either, Full};
use hyper::{server::conn::http1 as server, service::service_fn};
use tokio::net::TcpListener;

use super::*;
use crate::http::buffered::Buffered;

/// A server answering `METHOD URI host=HOST`, after 100 ms for paths under
/// `/slow`; with `close`, every response says `Connection: close`. Returns its address and accepted-connection count.
async fn server(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    super::exchanges::raw_server(move |stream| async move {
        let service = service_fn(move |req: Request<hyper::body::Incoming>| async move {
            if req.uri().path().starts_with("/slow") {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let host = req
                .headers()
                .get(http::header::HOST)
                .map(|h| h.to_str().unwrap_or("?").to_owned())
                .unwrap_or_default();
            let text = format!("{} {} host={host}", req.method(), req.uri());
            let mut response = http::Response::new(Full::new(Bytes::from(text)));
            if close {
                response
                    .headers_mut()
                    .insert(CONNECTION, http::HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        });
        let _ = server::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}

fn get(path: &str) -> Request<RequestBody> {
    Request::builder()
        .uri(path)
        .header(http::header::HOST, "app.mesh")
        .body(Either::Right(Buffered::empty()))
        .unwrap()
}

async fn text(response: Response<UpstreamBody>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let (addr, accepted) = server(false).await;
    let pool = H1Pool::new(addr, None, None);
    for i in 0..20 {
        let response = pool.send(get(&format!("/{i}")), false).await.unwrap();
        assert_eq!(text(response).await, format!("GET /{i} host=app.mesh"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_connections(), 1);
}

#[tokio::test]
async fn concurrent_requests_open_connections_that_are_reused_afterwards() {
    let (addr, accepted) = server(false).await;
    let pool = H1Pool::new(addr, None, None);
    // Four at once, each answered after 100 ms: four connections.
    let slow = (0..4).map(|i| pool.send(get(&format!("/slow/{i}")), false));
    for (i, response) in futures_util::future::join_all(slow)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            text(response.unwrap()).await,
            format!("GET /slow/{i} host=app.mesh")
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    for _ in 0..10 {
        text(pool.send(get("/"), false).await.unwrap()).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "no new connections");
}

#[tokio::test]
async fn connections_the_upstream_closes_are_dropped_and_replaced() {
    let (addr, accepted) = server(true).await;
    let pool = H1Pool::new(addr, None, None);
    for _ in 0..3 {
        let response = pool.send(get("/"), false).await.unwrap();
        assert_eq!(text(response).await, "GET / host=app.mesh");
        tokio::task::yield_now().await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(pool.idle_connections(), 0, "closed ones are not kept");
}

#[tokio::test]
async fn no_listener_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pool = H1Pool::new(addr, None, None);
    let unserved = pool.send(get("/"), false).await.unwrap_err();
    assert!(
        matches!(unserved.error, SendError::Connect(_)),
        "{unserved:?}"
    );
    // Nothing reached the upstream: the request comes back as it was.
    let request = unserved.request.expect("a bodiless request is handed back");
    assert_eq!(request.uri(), "/");
}

#[tokio::test]
async fn tls_for_a_plaintext_only_upstream_is_refused() {
    let (addr, accepted) = server(false).await;
    let pool = H1Pool::new(addr, None, None);
    let unserved = pool.send(get("/"), true).await.unwrap_err();
    assert!(
        matches!(unserved.error, SendError::Connect(_)),
        "{unserved:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}
