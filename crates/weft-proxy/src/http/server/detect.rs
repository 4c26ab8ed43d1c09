//! Tells HTTP/2 (prior knowledge) from HTTP/1.x by the first bytes of a
//! connection, without waiting for more bytes than needed: the first byte
//! that differs from the HTTP/2 preface means HTTP/1.x.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What every HTTP/2 prior-knowledge connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks, with the bytes read to tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Detected {
    Http1(Bytes),
    Http2(Bytes),
    /// The peer closed (or failed) before a byte told the protocol apart.
    Closed,
}

/// Reads the least number of bytes that decides the protocol.
pub async fn detect<S: AsyncRead + Unpin>(stream: &mut S) -> Detected {
    let mut read = BytesMut::with_capacity(H2_PREFACE.len());
    while read.len() < H2_PREFACE.len() {
        match stream.read_buf(&mut read).await {
            Ok(0) | Err(_) => return Detected::Closed,
            Ok(_) => {}
        }
        let seen = read.len().min(H2_PREFACE.len());
        if read[..seen] != H2_PREFACE[..seen] {
            return Detected::Http1(read.freeze());
        }
    }
    Detected::Http2(read.freeze())
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn detect_bytes(chunks: &[&[u8]]) -> Detected {
        let (mut client, mut server) = tokio::io::duplex(256);
        for chunk in chunks {
            client.write_all(chunk).await.unwrap();
        }
        drop(client);
        detect(&mut server).await
    }

    #[tokio::test]
    async fn one_differing_byte_is_enough_for_http1() {
        let (mut client, mut server) = tokio::io::duplex(256);
        // The connection stays open: detection must not wait for 24 bytes.
        client.write_all(b"G").await.unwrap();
        assert_eq!(
            detect(&mut server).await,
            Detected::Http1(Bytes::from_static(b"G"))
        );
    }

    #[tokio::test]
    async fn the_preface_in_pieces_is_http2() {
        assert_eq!(
            detect_bytes(&[b"PRI * HTTP/2.0\r\n", b"\r\nSM\r\n\r\n"]).await,
            Detected::Http2(Bytes::from_static(H2_PREFACE))
        );
    }

    #[tokio::test]
    async fn a_request_that_starts_like_the_preface_is_http1() {
        assert!(matches!(
            detect_bytes(&[b"PRI * HTTP/1.1\r\n\r\n"]).await,
            Detected::Http1(_)
        ));
    }

    #[tokio::test]
    async fn a_peer_that_closes_early_is_closed() {
        assert_eq!(detect_bytes(&[b"PRI * H"]).await, Detected::Closed);
        assert_eq!(detect_bytes(&[]).await, Detected::Closed);
    }
}
