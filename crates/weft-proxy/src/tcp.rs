//! Opaque TCP: connecting upstream within a deadline, and copying bytes
//! both ways without parsing them.

use std::{
    io::{self, IoSlice},
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf, copy_bidirectional},
    net::TcpStream,
};
use tracing::debug;

/// How long a connect to an endpoint or local service may take; past it
/// the next endpoint is tried, so a black-holed peer cannot hang a connect.
/// It says nothing about a peer that vanishes once connected: HTTP/2
/// upstreams are pinged (see `http::client`); spliced TCP is left to the
/// two ends' own timeouts.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `addr` with [`CONNECT_TIMEOUT`] and `TCP_NODELAY` set.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    within(CONNECT_TIMEOUT, open(addr)).await
}

/// Connects to `addr` with `TCP_NODELAY` set and no time limit of its own:
/// for callers that bound a longer exchange (connect and handshake).
pub async fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    set_nodelay(&stream);
    Ok(stream)
}

/// Runs a connect, failing with `TimedOut` (naming `limit`) past it.
pub async fn within<T>(
    limit: Duration,
    connect: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, connect).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect timed out after {limit:?}"),
        )
    })?
}

/// A proxy adds a hop; Nagle's algorithm would add a delay on top of it.
pub fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        // The socket still works, only slower for small writes.
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Copies bytes both ways until both directions are closed.
///
/// An error here is a peer resetting or timing out its side, which ends the
/// connection like a close does, so it is only worth a debug line.
pub async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match copy_bidirectional(&mut a, &mut b).await {
        Ok((sent, received)) => debug!(sent, received, "connection closed"),
        Err(e) => debug!(error = %e, "connection ended with an error"),
    }
}

/// Up to this many bytes, a vectored write of several buffers is copied
/// into one and sent as such: a copy that small costs less than `writev`
/// over `send` (measured on loopback: about 0.3 µs of kernel time per call).
const GATHER_LIMIT: usize = 2048;

/// A vectored write that holds bytes in only one of its buffers, or few
/// bytes in all, goes out as a plain write: on a socket that is `send`,
/// which the kernel serves with less work than `writev` (no iovec to
/// import, no VFS layer). hyper writes a small response's head and body as
/// two buffers, and rustls each flush of its records as one.
pub fn poll_write_gathered<W: AsyncWrite + ?Sized>(
    writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let mut filled = bufs.iter().filter(|b| !b.is_empty());
    let first = filled.next();
    if filled.next().is_none() {
        return writer.poll_write(cx, first.map_or(&[][..], |b| &b[..]));
    }
    if bufs.iter().map(|b| b.len()).sum::<usize>() > GATHER_LIMIT {
        return writer.poll_write_vectored(cx, bufs);
    }
    let mut gathered = [0u8; GATHER_LIMIT];
    let mut len = 0;
    for buf in bufs {
        gathered[len..len + buf.len()].copy_from_slice(buf);
        len += buf.len();
    }
    writer.poll_write(cx, &gathered[..len])
}

/// The socket under a TLS stream. rustls hands each flush of its records
/// to the socket as a vectored write, usually of one buffer: through this
/// it is a `send` (see [`poll_write_gathered`]).
#[derive(Debug)]
pub struct Socket(pub TcpStream);

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_gathered(Pin::new(&mut self.0), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::{future::poll_fn, pin::pin};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// Records how each write reached it.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<(&'static str, Vec<u8>)>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(("write", buf.to_vec()));
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let len = all.len();
            self.writes.push(("writev", all));
            Poll::Ready(Ok(len))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn gathered(bufs: &[&[u8]]) -> (usize, Vec<(&'static str, Vec<u8>)>) {
        let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut recorder = Recorder::default();
        let written = poll_fn(|cx| poll_write_gathered(Pin::new(&mut recorder), cx, &slices))
            .await
            .unwrap();
        (written, recorder.writes)
    }

    #[tokio::test]
    async fn one_filled_buffer_is_a_plain_write() {
        let (n, writes) = gathered(&[b"", b"head", b""]).await;
        assert_eq!(n, 4);
        assert_eq!(writes, vec![("write", b"head".to_vec())]);
        let (n, writes) = gathered(&[b"", b""]).await;
        assert_eq!(n, 0);
        assert_eq!(writes, vec![("write", Vec::new())]);
    }

    #[tokio::test]
    async fn small_buffers_are_copied_into_one_write() {
        let (n, writes) = gathered(&[b"HTTP/1.1 200 OK\r\n\r\n", b"body"]).await;
        assert_eq!(n, 23);
        assert_eq!(
            writes,
            vec![("write", b"HTTP/1.1 200 OK\r\n\r\nbody".to_vec())]
        );
    }

    #[tokio::test]
    async fn large_buffers_stay_vectored() {
        let body = vec![b'x'; GATHER_LIMIT];
        let (n, writes) = gathered(&[b"head", &body]).await;
        assert_eq!(n, GATHER_LIMIT + 4);
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].0, "writev");
        assert_eq!(writes[0].1.len(), GATHER_LIMIT + 4);
    }

    #[tokio::test]
    async fn socket_carries_vectored_writes_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut socket = pin!(Socket(client));
        let big = vec![b'b'; 3 * GATHER_LIMIT];
        let mut sent = Vec::new();
        for bufs in [
            &[&b"a"[..], b"bc"][..],
            &[&b""[..], b"def"],
            &[&b"g"[..], &big],
        ] {
            sent.extend(bufs.iter().flat_map(|b| b.iter().copied()));
            let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let n = socket.write_vectored(slices).await.unwrap();
                IoSlice::advance_slices(&mut slices, n);
            }
        }
        socket.shutdown().await.unwrap();
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, sent);
    }
}
