use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

use super::*;

#[test]
fn first_bytes() {
    assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Detected::Http1));
    assert_eq!(classify(b"DELETE /x"), Some(Detected::Http1));
    assert_eq!(classify(H2_PREFACE), Some(Detected::Http2));
    assert_eq!(classify(&[0x16, 0x03, 0x01, 0x02]), Some(Detected::Tls));
    assert_eq!(classify(&[0x16, 0x09]), Some(Detected::Opaque));
    assert_eq!(classify(b"\x00\x00\x00\x08"), Some(Detected::Opaque));
    assert_eq!(classify(b"get / HTTP/1.1"), Some(Detected::Opaque));
    assert_eq!(classify(b"HELLO\r\n"), Some(Detected::Opaque));
    assert_eq!(
        classify(b"AAAAAAAAAAAAAAAAAAAAAAAA"),
        Some(Detected::Opaque)
    );
}

#[test]
fn too_few_bytes_wait_for_more() {
    assert_eq!(classify(b""), None);
    assert_eq!(classify(&[0x16]), None);
    assert_eq!(classify(b"GE"), None);
    // "PRI" is both a method prefix and the preface's start.
    assert_eq!(classify(b"PRI * HTTP/2"), None);
    // ...and a real PRI request is HTTP/1 once it differs from the preface.
    assert_eq!(classify(b"PRI /x"), Some(Detected::Http1));
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[tokio::test]
async fn detection_leaves_the_bytes_in_the_socket() {
    let (mut client, server) = pair().await;
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert_eq!(
        detect(&server, DETECT_TIMEOUT).await.unwrap(),
        Detected::Http1
    );
    let mut buf = [0u8; 3];
    server.peek(&mut buf).await.unwrap();
    assert_eq!(&buf, b"GET");
}

#[tokio::test]
async fn a_preface_in_two_pieces_is_http2() {
    let (mut client, server) = pair().await;
    client.write_all(&H2_PREFACE[..10]).await.unwrap();
    let detecting = tokio::spawn(async move { detect(&server, DETECT_TIMEOUT).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(30)).await;
    client.write_all(&H2_PREFACE[10..]).await.unwrap();
    assert_eq!(detecting.await.unwrap(), Detected::Http2);
}

#[tokio::test]
async fn a_silent_client_is_silent_after_the_timeout_and_a_closed_one_closed() {
    let (_client, server) = pair().await;
    let started = Instant::now();
    assert_eq!(
        detect(&server, Duration::from_millis(100)).await.unwrap(),
        Detected::Silent
    );
    assert!(started.elapsed() >= Duration::from_millis(100));

    let (client, server) = pair().await;
    drop(client);
    assert_eq!(
        detect(&server, DETECT_TIMEOUT).await.unwrap(),
        Detected::Closed
    );
}
