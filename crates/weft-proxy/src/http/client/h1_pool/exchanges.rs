//! The HTTP/1.1 client against real servers on loopback: hyper's, for
//! bodies both ways, and hand-written ones for the framings and failures
//! hyper would never send.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, Either};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::*;
use crate::http::buffered::Buffered;

/// A server that runs `answer` on each connection it accepts, and counts
/// them.
pub(super) async fn raw_server<F, Fut>(answer: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(stream));
        }
    });
    (addr, accepted)
}

/// Reads one request head (and nothing after it).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Answers every request on a connection with `response`.
async fn canned(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    raw_server(move |mut stream| async move {
        while read_head(&mut stream).await.is_some() {
            if stream.write_all(response).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Answers the first request on each connection with `response`, then
/// closes the connection (without saying so in the response).
async fn answer_once(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    raw_server(move |mut stream| async move {
        if read_head(&mut stream).await.is_some() {
            let _ = stream.write_all(response).await;
        }
    })
    .await
}

fn request(method: Method, body: Buffered) -> Request<RequestBody> {
    Request::builder()
        .method(method)
        .uri("/")
        .header(header::HOST, "app.mesh")
        .body(Either::Right(body))
        .unwrap()
}

async fn get(pool: &Arc<H1Pool>) -> Result<Response<UpstreamBody>, Unserved> {
    pool.send(request(Method::GET, Buffered::empty()), false)
        .await
}

fn exchange_error(unserved: Unserved) -> ExchangeError {
    match unserved.error {
        SendError::Exchange(error) => error,
        other => panic!("not an exchange error: {other:?}"),
    }
}

async fn collect(response: Response<UpstreamBody>) -> (Bytes, Option<http::HeaderMap>) {
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes(), trailers)
}

#[tokio::test]
async fn a_chunked_response_with_trailers_keeps_its_connection() {
    let (addr, accepted) = canned(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n",
    )
    .await;
    let pool = H1Pool::new(addr, None, None);
    for _ in 0..3 {
        let response = get(&pool).await.unwrap();
        let (body, trailers) = collect(response).await;
        assert_eq!(body, "hello world");
        assert_eq!(trailers.unwrap()["x-sum"], "11");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_connections(), 1);
}

#[tokio::test]
async fn bodiless_answers_keep_their_connection() {
    // HEAD announces a length it does not send; 204 and 304 carry none.
    let (addr, accepted) = raw_server(|mut stream| async move {
        while let Some(head) = read_head(&mut stream).await {
            let answer: &[u8] = if head.starts_with("HEAD") {
                b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
            } else if head.starts_with("DELETE") {
                b"HTTP/1.1 204 No Content\r\n\r\n"
            } else {
                b"HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n"
            };
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let pool = H1Pool::new(addr, None, None);
    for method in [Method::HEAD, Method::DELETE, Method::GET, Method::HEAD] {
        let response = pool
            .send(request(method.clone(), Buffered::empty()), false)
            .await
            .unwrap();
        assert!(response.body().is_end_stream(), "{method}");
        assert_eq!(collect(response).await.0, "", "{method}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let (addr, _) = canned(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    let pool = H1Pool::new(addr, None, None);
    let response = pool.send(
        request(Method::POST, Buffered::full(Bytes::from_static(b"x"))),
        false,
    );
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(!response.headers().contains_key(header::LINK));
    assert_eq!(collect(response).await.0, "ok");
}

#[tokio::test]
async fn a_body_until_close_is_read_to_the_end_and_its_connection_not_kept() {
    let (addr, accepted) = answer_once(b"HTTP/1.1 200 OK\r\n\r\nall of it").await;
    let pool = H1Pool::new(addr, None, None);
    for _ in 0..2 {
        let response = get(&pool).await.unwrap();
        assert_eq!(collect(response).await.0, "all of it");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(pool.idle_connections(), 0);
}

#[tokio::test]
async fn a_truncated_body_is_an_error() {
    let (addr, _) = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf").await;
    let pool = H1Pool::new(addr, None, None);
    let response = get(&pool).await.unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("closed the connection before the end"),
        "{error}"
    );
    assert_eq!(pool.idle_connections(), 0);
}

#[tokio::test]
async fn a_malformed_answer_is_an_error_that_reached_the_upstream() {
    let (addr, _) = canned(b"HTTP/1.1 abc\r\n\r\n").await;
    let pool = H1Pool::new(addr, None, None);
    let error = exchange_error(get(&pool).await.unwrap_err());
    assert!(matches!(error, ExchangeError::Response(_)), "{error:?}");
    assert!(!error.nothing_sent() && !error.unanswered());
    assert!(
        error.to_string().starts_with("malformed response"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_unanswered() {
    let (addr, _) = raw_server(|mut stream| async move {
        read_head(&mut stream).await;
    })
    .await;
    let pool = H1Pool::new(addr, None, None);
    let unserved = get(&pool).await.unwrap_err();
    let request = unserved.request.as_ref().map(|r| r.uri().to_string());
    let error = exchange_error(unserved);
    assert!(error.unanswered(), "{error:?}");
    // Bodiless and unanswered: handed back, so it can be sent again.
    assert_eq!(request.as_deref(), Some("/"));
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used() {
    // Answers once per connection, then closes it (without saying so).
    let (addr, accepted) = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let pool = H1Pool::new(addr, None, None);
    for _ in 0..3 {
        let response = get(&pool).await.unwrap();
        assert_eq!(collect(response).await.0, "ok");
        // Time for the close to arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn request_bodies_go_with_their_length_or_chunked() {
    let (addr, _) = raw_server(|mut stream| async move {
        while let Some(head) = read_head(&mut stream).await {
            let lower = head.to_ascii_lowercase();
            let body = if let Some(at) = lower.find("content-length: ") {
                let len: usize = lower[at + 16..]
                    .split("\r\n")
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut body = vec![0; len];
                stream.read_exact(&mut body).await.unwrap();
                format!("length {}", String::from_utf8_lossy(&body))
            } else {
                // The chunked body up to its last chunk and trailers.
                let mut raw = Vec::new();
                let mut byte = [0u8; 1];
                while !raw.ends_with(b"0\r\nx-t: 1\r\n\r\n") {
                    stream.read_exact(&mut byte).await.unwrap();
                    raw.push(byte[0]);
                }
                format!("chunked {}", String::from_utf8_lossy(&raw))
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    })
    .await;
    let pool = H1Pool::new(addr, None, None);
    let response = pool
        .send(
            request(Method::POST, Buffered::full(Bytes::from_static(b"abc"))),
            false,
        )
        .await
        .unwrap();
    assert_eq!(collect(response).await.0, "length abc");

    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-t", HeaderValue::from_static("1"));
    let frames = VecDeque::from([
        Frame::data(Bytes::from_static(b"ab")),
        Frame::data(Bytes::from_static(b"cde")),
        Frame::trailers(trailers),
    ]);
    let mut req = request(Method::PUT, Buffered::resume(frames, None));
    req.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    let response = pool.send(req, false).await.unwrap();
    assert_eq!(
        collect(response).await.0,
        "chunked 2\r\nab\r\n3\r\ncde\r\n0\r\nx-t: 1\r\n\r\n"
    );
}

#[tokio::test]
async fn a_large_body_streams_back_while_it_is_still_being_sent() {
    // hyper echoes the body frame by frame as it arrives: the answer
    // begins long before the request ends.
    let (addr, _) = raw_server(|stream| async move {
        let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(req.into_body()))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await;
    let body: Bytes = (0..4 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let frames = body
        .chunks(64 * 1024)
        .map(|c| Frame::data(body.slice_ref(c)))
        .collect();
    let mut req = request(Method::POST, Buffered::resume(frames, None));
    req.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    let pool = H1Pool::new(addr, None, None);
    let response = tokio::time::timeout(Duration::from_secs(20), async {
        let response = pool.send(req, false).await.unwrap();
        collect(response).await.0
    })
    .await
    .expect("the exchange finishes");
    assert_eq!(response.len(), body.len());
    assert!(response == body);
    assert_eq!(pool.idle_connections(), 1);
}

#[tokio::test]
async fn an_early_answer_arrives_though_the_upstream_stops_reading() {
    // Refuses the body unread, answers and closes.
    let (addr, _) = answer_once(
        b"HTTP/1.1 413 Content Too Large\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbig",
    )
    .await;
    let body = Bytes::from(vec![b'x'; 8 << 20]);
    let pool = H1Pool::new(addr, None, None);
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        pool.send(request(Method::POST, Buffered::full(body)), false),
    )
    .await
    .expect("no deadlock")
    .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(collect(response).await.0, "big");
    assert_eq!(pool.idle_connections(), 0);
}

#[tokio::test]
async fn a_body_longer_than_its_length_is_refused() {
    let (addr, _) = canned(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let pool = H1Pool::new(addr, None, None);
    let mut req = request(Method::POST, Buffered::full(Bytes::from_static(b"abcdef")));
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    let unserved = pool.send(req, false).await.unwrap_err();
    let error = unserved.error;
    assert!(
        error.to_string().contains("longer than its Content-Length"),
        "{error}"
    );
    // Its body is spent: nothing to send again.
    assert!(unserved.request.is_none());
}
