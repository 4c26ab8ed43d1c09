//! The server side of [`serve`] on in-memory connections, with paused time.

use std::time::Duration;

use http::Response;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, DuplexStream},
    task::JoinHandle,
};

use super::{server::*, *};

mod keep_alive;
use crate::drain::{self, Signal};

const SECOND: Duration = Duration::from_secs(1);

/// A connection to `serve` with a handler that answers `ok`; the signal
/// must be held, or the connection drains.
fn connect() -> (DuplexStream, JoinHandle<()>, Signal) {
    let (client, server) = tokio::io::duplex(4096);
    let (signal, watch) = drain::channel();
    let handler = |_req| async { Response::new(Full::new(Bytes::from_static(b"ok"))) };
    (client, tokio::spawn(serve(server, handler, watch)), signal)
}

/// Reads until a whole response to `GET` arrived (it ends with `ok`).
async fn response(client: &mut DuplexStream) -> String {
    let mut text = String::new();
    let mut buf = [0; 1024];
    while !text.ends_with("ok") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed() {
    let (mut client, server, _signal) = connect();
    assert_closed_after(FIRST_REQUEST_TIMEOUT, &mut client, &server).await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_stuck_in_the_http2_preface_is_closed() {
    let (mut client, server, _signal) = connect();
    client.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert_closed_after(FIRST_REQUEST_TIMEOUT, &mut client, &server).await;
}

#[tokio::test(start_paused = true)]
async fn a_first_request_in_time_keeps_the_connection_open() {
    let (mut client, server, _signal) = connect();
    let get = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    tokio::time::sleep(FIRST_REQUEST_TIMEOUT - SECOND).await;
    client.write_all(get).await.unwrap();
    assert!(
        response(&mut client)
            .await
            .starts_with("HTTP/1.1 200 OK\r\n")
    );

    // Past the first request's deadline, the keep-alive connection serves
    // on (until the keep-alive timeout).
    tokio::time::sleep(10 * SECOND).await;
    assert!(!server.is_finished());
    client.write_all(get).await.unwrap();
    assert!(
        response(&mut client)
            .await
            .starts_with("HTTP/1.1 200 OK\r\n")
    );
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";

/// Asserts that `server` closes the connection between `timeout - 1 s`
/// and `timeout + 1 s` from now.
async fn assert_closed_after(
    timeout: Duration,
    client: &mut DuplexStream,
    server: &JoinHandle<()>,
) {
    tokio::time::sleep(timeout - SECOND).await;
    assert!(!server.is_finished(), "closed too early");
    tokio::time::sleep(2 * SECOND).await;
    assert!(server.is_finished(), "still open after the timeout");
    assert_eq!(client.read(&mut [0; 64]).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_closes_at_the_keep_alive_timeout() {
    let (mut client, server, _signal) = connect();
    // Each request starts the wait for the next one anew.
    for _ in 0..4 {
        client.write_all(GET).await.unwrap();
        response(&mut client).await;
        tokio::time::sleep(KEEP_ALIVE_TIMEOUT - 5 * SECOND).await;
    }
    client.write_all(GET).await.unwrap();
    response(&mut client).await;
    assert_closed_after(KEEP_ALIVE_TIMEOUT, &mut client, &server).await;
}

#[tokio::test(start_paused = true)]
async fn a_request_head_sent_slowly_is_cut_at_the_keep_alive_timeout() {
    let (mut client, server, _signal) = connect();
    client.write_all(GET).await.unwrap();
    response(&mut client).await;
    // One byte every 2 s: the bytes keep coming, the head never completes
    // in time.
    let slow =
        b"GET /slow HTTP/1.1\r\nhost: a\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = tokio::time::Instant::now();
    for byte in slow {
        if server.is_finished() {
            break;
        }
        client.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(2 * SECOND).await;
    }
    let waited = started.elapsed();
    assert!(server.is_finished(), "the slow head was served");
    assert!(
        waited >= KEEP_ALIVE_TIMEOUT && waited <= KEEP_ALIVE_TIMEOUT + 2 * SECOND,
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_sent_as_the_listener_drains_is_answered_then_closed() {
    let (mut client, server, signal) = connect();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    // The drain starts before the server has read a byte.
    let drained = tokio::spawn(signal.drain());
    let answer = response(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert_eq!(client.read(&mut [0; 16]).await.unwrap(), 0);
    drained.await.unwrap();
    assert!(server.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_gets_the_drain_grace_for_its_first_request() {
    let (mut client, server, signal) = connect();
    let drained = tokio::spawn(signal.drain());
    tokio::time::sleep(DRAIN_GRACE / 2).await;
    assert!(!server.is_finished(), "closed before the grace ended");
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        response(&mut client)
            .await
            .contains("connection: close\r\n")
    );
    drained.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_closes_when_the_drain_grace_ends() {
    let (mut client, server, signal) = connect();
    let drained = tokio::spawn(signal.drain());
    tokio::time::sleep(DRAIN_GRACE - Duration::from_millis(10)).await;
    assert!(!server.is_finished(), "closed before the grace ended");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(server.is_finished(), "still open after the grace");
    assert_eq!(client.read(&mut [0; 16]).await.unwrap(), 0);
    drained.await.unwrap();
}
