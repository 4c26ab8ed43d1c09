//! Opaque TCP through an outbound → inbound pair.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weft_api::Protocol;

use super::support::*;

#[tokio::test]
async fn bytes_are_echoed_through_the_pair() {
    let backend = tcp_backend("a").await;
    let pair = pair(Protocol::Tcp, backend).await;
    let mut stream = TcpStream::connect(pair.outbound).await.unwrap();
    assert_eq!(read_text(&mut stream, 1).await, "a");
    stream.write_all(b"hello through the mesh").await.unwrap();
    assert_eq!(read_text(&mut stream, 22).await, "hello through the mesh");
}

#[tokio::test]
async fn connections_are_balanced_round_robin() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let (inbound_a, _ra) = start_inbound(Protocol::Tcp, a).await;
    let (inbound_b, _rb) = start_inbound(Protocol::Tcp, b).await;
    let (outbound, _ro) = start_outbound(Protocol::Tcp, &[inbound_a, inbound_b]).await;
    let mut names = String::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(outbound).await.unwrap();
        names.push_str(&read_text(&mut stream, 1).await);
    }
    assert!(names == "abab" || names == "baba", "{names}");
}

#[tokio::test]
async fn no_endpoints_closes_the_connection_at_once() {
    let (outbound, _running) = start_outbound(Protocol::Tcp, &[]).await;
    let mut stream = TcpStream::connect(outbound).await.unwrap();
    let mut buf = [0; 1];
    // The bound only keeps a broken proxy from hanging the test.
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the proxy should close the connection at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn unreachable_endpoints_close_the_connection() {
    let (outbound, _running) = start_outbound(Protocol::Tcp, &[free_addr(), free_addr()]).await;
    let mut stream = TcpStream::connect(outbound).await.unwrap();
    let mut buf = [0; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the proxy should close the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
