//! HTTP/1.1 keep-alive on real sockets, where an idle connection is taken
//! back from hyper between requests: requests that straddle that moment
//! (pipelined, split heads, bodies) must be served exactly as before.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use http::Request;

use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};

use super::{
    http1::{PARK_AFTER, PARKED},
    *,
};

/// Long enough for an idle connection to be taken from hyper.
const IDLE: Duration = Duration::from_millis(PARK_AFTER.as_millis() as u64 + 100);

/// A server on loopback answering `<method> <path> <body length>`; the
/// signal must be held, or the connection drains.
async fn server() -> (TcpStream, JoinHandle<()>, Signal, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    let (stream, _) = accepted.unwrap();
    let (signal, watch) = drain::channel();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let handler = move |req: Request<Incoming>| {
        let counter = counter.clone();
        async move {
            let line = format!("{} {}", req.method(), req.uri().path());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            counter.fetch_add(1, Ordering::Relaxed);
            let text = format!("{line} {}.", body.len());
            Response::new(Full::new(Bytes::from(text)))
        }
    };
    let task = tokio::spawn(serve(stream, handler, watch));
    (client.unwrap(), task, signal, served)
}

/// Reads `n` whole responses (each body ends with a dot) and returns their
/// bodies in order.
async fn bodies(client: &mut TcpStream, n: usize) -> Vec<String> {
    let mut text = String::new();
    let mut buf = [0; 4096];
    while text.matches('.').count() < n {
        let read = client.read(&mut buf).await.unwrap();
        assert!(read > 0, "closed after {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..read]));
    }
    text.split("HTTP/1.1 200 OK")
        .filter_map(|r| r.split("\r\n\r\n").nth(1))
        .map(str::to_owned)
        .collect()
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn sequential_requests_are_all_served_on_one_connection() {
    let (mut client, _task, _signal, served) = server().await;
    for _ in 0..5 {
        client.write_all(GET).await.unwrap();
        assert_eq!(bodies(&mut client, 1).await, ["GET /a 0."]);
        // Let the connection go idle between requests.
        tokio::time::sleep(IDLE).await;
    }
    assert_eq!(served.load(Ordering::Relaxed), 5);
    assert!(
        PARKED.load(Ordering::Relaxed) >= 5,
        "idle connections should leave hyper"
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (mut client, _task, _signal, _) = server().await;
    let pipelined = [
        GET,
        b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc",
        b"GET /c HTTP/1.1\r\nhost: x\r\n\r\n",
    ]
    .concat();
    client.write_all(&pipelined).await.unwrap();
    assert_eq!(
        bodies(&mut client, 3).await,
        ["GET /a 0.", "POST /b 3.", "GET /c 0."]
    );
}

#[tokio::test]
async fn a_head_split_across_the_idle_wait_is_served() {
    let (mut client, _task, _signal, _) = server().await;
    client.write_all(GET).await.unwrap();
    bodies(&mut client, 1).await;
    tokio::time::sleep(IDLE).await;
    client.write_all(b"GET /sp").await.unwrap();
    // Idle long enough for hyper to be parted from the half-read head.
    tokio::time::sleep(IDLE).await;
    client
        .write_all(b"lit HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(bodies(&mut client, 1).await, ["GET /split 0."]);
}

#[tokio::test]
async fn a_body_sent_after_a_pause_is_never_read_as_a_request() {
    let (mut client, _task, _signal, _) = server().await;
    client
        .write_all(b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 26\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Bytes that would parse as a request if they were taken for one.
    client
        .write_all(b"GET /smuggled HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(bodies(&mut client, 1).await, ["POST /p 26."]);
    client.write_all(GET).await.unwrap();
    assert_eq!(bodies(&mut client, 1).await, ["GET /a 0."]);
}

#[tokio::test]
async fn an_idle_connection_closes_at_once_on_drain() {
    let (mut client, task, signal, _) = server().await;
    client.write_all(GET).await.unwrap();
    bodies(&mut client, 1).await;
    tokio::time::sleep(IDLE).await;
    tokio::time::timeout(Duration::from_secs(5), signal.drain())
        .await
        .expect("the idle connection should close on drain");
    task.await.unwrap();
    assert_eq!(client.read(&mut [0; 16]).await.unwrap(), 0);
}

#[tokio::test]
async fn a_peer_that_closes_while_idle_ends_the_task() {
    let (mut client, task, _signal, _) = server().await;
    client.write_all(GET).await.unwrap();
    bodies(&mut client, 1).await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task should end when the peer closes")
        .unwrap();
}

#[tokio::test]
async fn a_request_on_a_waiting_connection_as_it_drains_is_answered() {
    let (mut client, task, signal, _) = server().await;
    client.write_all(GET).await.unwrap();
    bodies(&mut client, 1).await;
    tokio::time::sleep(IDLE).await;
    // Sent, then the drain, before the server task runs again (one thread).
    client.write_all(GET).await.unwrap();
    let drained = signal.drain();
    assert_eq!(bodies(&mut client, 1).await, ["GET /a 0."]);
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("the connection should close after the answer");
    task.await.unwrap();
    assert_eq!(client.read(&mut [0; 16]).await.unwrap(), 0);
}
