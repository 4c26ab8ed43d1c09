//! An HTTP/1.1 upgrade (WebSocket-style) through an outbound → inbound
//! pair: after the 101, bytes flow both ways untouched.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft_api::Protocol;

use super::support::*;

/// Reads up to the end of an HTTP head, one byte at a time so nothing
/// after it is consumed.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed inside the head"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A raw server that switches to an echo protocol on `Upgrade: echo` and
/// hands the request head it saw to the test.
async fn upgrade_backend() -> (SocketAddr, tokio::sync::oneshot::Receiver<String>) {
    let (listener, addr) = listen().await;
    let (seen, head) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_head(&mut stream).await;
        let _ = seen.send(request);
        stream
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let (mut r, mut w) = stream.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    (addr, head)
}

#[tokio::test]
async fn upgrade_switches_both_proxies_to_bytes() {
    let (backend, seen) = upgrade_backend().await;
    let pair = pair(Protocol::Http, backend).await;
    let mut client = TcpStream::connect(pair.outbound).await.unwrap();
    client
        .write_all(b"GET /ws HTTP/1.1\r\nHost: backend.mesh\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\nSec-Test: 1\r\n\r\n")
        .await
        .unwrap();
    let response = read_head(&mut client).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    let response = response.to_ascii_lowercase();
    assert!(response.contains("upgrade: echo"), "{response}");
    assert!(response.contains("connection: upgrade"), "{response}");

    let request = seen.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("get /ws http/1.1"), "{request}");
    assert!(request.contains("host: backend.mesh"), "{request}");
    assert!(request.contains("upgrade: echo"), "{request}");
    assert!(request.contains("connection: upgrade"), "{request}");
    assert!(request.contains("sec-test: 1"), "{request}");

    for message in ["ping", "a longer message after the first"] {
        client.write_all(message.as_bytes()).await.unwrap();
        assert_eq!(read_text(&mut client, message.len()).await, message);
    }
}
