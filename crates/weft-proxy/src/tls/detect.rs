//! TLS or plaintext, told from a connection's first bytes without
//! consuming them (`peek`), so either stack then reads the connection from
//! its start.
//!
//! A TLS connection opens with a handshake record: content type 0x16 and
//! major version 3. No HTTP request starts with 0x16, and opaque TCP that
//! happens to is expected to be rare; server-speaks-first protocols, whose
//! clients send nothing, are told apart only by the caller's timeout.

use std::{io, time::Duration};

use tokio::net::TcpStream;

/// How long to wait for a second byte when the first one looks like TLS:
/// a record header split over two segments is rare, so polling briefly is
/// simpler than buffering.
const SECOND_BYTE_POLL: Duration = Duration::from_millis(5);

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    Tls,
    Plaintext,
    /// The peer closed before sending anything.
    Closed,
}

/// Waits for the first bytes of `stream` and classifies them. Callers
/// bound it with a timeout.
pub async fn first_bytes(stream: &TcpStream) -> io::Result<FirstBytes> {
    let mut buf = [0u8; 2];
    loop {
        let n = stream.peek(&mut buf).await?;
        match (n, buf) {
            (0, _) => return Ok(FirstBytes::Closed),
            (1, [0x16, _]) => tokio::time::sleep(SECOND_BYTE_POLL).await,
            (_, [0x16, 0x03]) => return Ok(FirstBytes::Tls),
            _ => return Ok(FirstBytes::Plaintext),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::tests::support::listen;

    async fn classify(bytes: &'static [u8]) -> io::Result<FirstBytes> {
        let (listener, addr) = listen().await;
        let mut client = TcpStream::connect(addr).await?;
        let (server, _) = listener.accept().await?;
        if bytes.is_empty() {
            client.shutdown().await?;
        } else {
            client.write_all(bytes).await?;
        }
        let kind = first_bytes(&server).await;
        // Nothing was consumed: the stack after detection sees it all.
        let mut buf = vec![0; bytes.len()];
        assert_eq!(server.peek(&mut buf).await?, bytes.len());
        assert_eq!(buf, bytes);
        kind
    }

    #[tokio::test]
    async fn a_handshake_record_is_tls() {
        assert_eq!(
            classify(b"\x16\x03\x01\x02\x00").await.unwrap(),
            FirstBytes::Tls
        );
    }

    #[tokio::test]
    async fn http_and_other_bytes_are_plaintext() {
        for bytes in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PRI * HTTP/2.0",
            b"\x16\x01",
            b"\x00",
        ] {
            assert_eq!(
                classify(bytes).await.unwrap(),
                FirstBytes::Plaintext,
                "{bytes:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_close_before_any_byte_is_closed() {
        assert_eq!(classify(b"").await.unwrap(), FirstBytes::Closed);
    }

    #[tokio::test]
    async fn a_split_record_header_waits_for_the_second_byte() {
        let (listener, addr) = listen().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"\x16").await.unwrap();
        let detect = tokio::spawn(async move { first_bytes(&server).await.unwrap() });
        tokio::task::yield_now().await;
        client.write_all(b"\x03").await.unwrap();
        assert_eq!(detect.await.unwrap(), FirstBytes::Tls);
    }
}
