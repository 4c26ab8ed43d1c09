//! The socket as hyper sees it: bytes already read (to tell the protocol,
//! or by a previous hyper connection) come first, writes and flushes are
//! reported to the connection's [`Cycle`], and [`Park`] says whether the
//! socket can wait for its next request without hyper's buffers.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::server::TlsStream;

use super::cycle::Cycle;
use crate::tcp::Socket;

/// A stream an idle HTTP/1.1 connection can wait on without reading.
pub trait Park {
    /// Whether [`Park::readable`] works for this stream.
    fn can_park(&self) -> bool;

    /// Ready once the peer sent something, closed, or the socket failed:
    /// the next read will not wait. A poll function rather than a future,
    /// so that a waiting connection's task stores no waiter for it.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Whether the peer has sent bytes not read yet, asked of the kernel
    /// now: the runtime learns of readiness only when it next polls for
    /// events, so a drain can come first.
    fn has_unread_bytes(&self) -> bool;
}

impl Park for TcpStream {
    fn can_park(&self) -> bool {
        true
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        // An error also means "reading will not wait": the read reports it.
        self.poll_read_ready(cx).map(|_| ())
    }

    fn has_unread_bytes(&self) -> bool {
        // Non-blocking like every socket of the runtime: nothing to peek
        // is `WouldBlock`, which counts as no bytes.
        let mut byte = [std::mem::MaybeUninit::uninit()];
        matches!(socket2::SockRef::from(self).peek(&mut byte), Ok(n) if n > 0)
    }
}

/// TLS keeps decrypted bytes of its own, which a socket's readiness does not
/// show; its connections stay with hyper between requests.
impl Park for Box<TlsStream<Socket>> {
    fn can_park(&self) -> bool {
        false
    }

    fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    fn has_unread_bytes(&self) -> bool {
        false
    }
}

/// In-memory streams (tests) have no readiness to wait on.
impl Park for DuplexStream {
    fn can_park(&self) -> bool {
        false
    }

    fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    fn has_unread_bytes(&self) -> bool {
        false
    }
}

/// `S` with bytes to replay before its own and writes reported to a cycle.
#[derive(Debug)]
pub struct Io<S> {
    unread: Bytes,
    inner: S,
    cycle: Arc<Cycle>,
}

impl<S> Io<S> {
    pub fn new(unread: Bytes, inner: S, cycle: Arc<Cycle>) -> Self {
        Self {
            unread,
            inner,
            cycle,
        }
    }

    /// Puts back bytes read from this stream but not used (they came
    /// before anything still unread).
    pub fn unread(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.unread.is_empty() {
            self.unread = bytes;
        } else {
            let mut joined = BytesMut::with_capacity(bytes.len() + self.unread.len());
            joined.extend_from_slice(&bytes);
            joined.extend_from_slice(&self.unread);
            self.unread = joined.freeze();
        }
    }

    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Io<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            if self.unread.is_empty() {
                // An empty slice would keep its whole buffer alive for as
                // long as the connection waits.
                self.unread = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Io<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.cycle.wrote();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.cycle.wrote();
        crate::tcp::poll_write_gathered(Pin::new(&mut self.inner), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.cycle.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn unread_bytes_come_first_in_order() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = Io::new(
            Bytes::from_static(b"cd"),
            server,
            Arc::new(Cycle::default()),
        );
        io.unread(Bytes::from_static(b"ab"));
        client.write_all(b"ef").await.unwrap();
        let mut got = [0; 6];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
        assert!(!io.has_unread());
    }

    #[tokio::test]
    async fn a_write_clears_flushed_and_a_flush_sets_it() {
        let (_client, server) = tokio::io::duplex(64);
        let cycle = Arc::new(Cycle::default());
        let mut io = Io::new(Bytes::new(), server, cycle.clone());
        io.flush().await.unwrap();
        assert!(cycle.is_idle());
        io.write_all(b"x").await.unwrap();
        assert!(!cycle.is_idle());
        io.flush().await.unwrap();
        assert!(cycle.is_idle());
    }
}
