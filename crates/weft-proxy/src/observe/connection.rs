//! One TCP connection under observation: [`Observer::open`] tells the
//! sinks it opened, [`ConnectionObservation::count`] wraps the client's
//! stream to count bytes each way, and dropping the observation tells the
//! sinks it closed, with those counts.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Instant, SystemTime},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{ConnectionRecord, Edge, Observer};

/// Bytes each way, shared by the counting stream and the observation.
#[derive(Debug, Default)]
struct Bytes {
    from_client: AtomicU64,
    to_client: AtomicU64,
}

/// An open connection; reports its close when dropped.
pub struct ConnectionObservation {
    observer: Arc<Observer>,
    record: ConnectionRecord,
    started: Instant,
    bytes: Arc<Bytes>,
}

impl Observer {
    /// Records that a connection from `peer` opened on `edge`.
    pub fn open(
        self: &Arc<Self>,
        edge: &Arc<Edge>,
        peer: Option<SocketAddr>,
    ) -> ConnectionObservation {
        let record = ConnectionRecord {
            edge: edge.clone(),
            peer,
            upstream: None,
            start: SystemTime::now(),
            duration: Default::default(),
            bytes_in: 0,
            bytes_out: 0,
        };
        self.each_sink(|sink| sink.connection_opened(&record));
        ConnectionObservation {
            observer: self.clone(),
            record,
            started: Instant::now(),
            bytes: Arc::default(),
        }
    }
}

impl ConnectionObservation {
    /// The address the connection was spliced to.
    pub fn connected(&mut self, upstream: SocketAddr) {
        self.record.upstream = Some(upstream);
    }

    /// Wraps the client's side of the connection to count its bytes.
    pub fn count<S>(&self, stream: S) -> Counted<S> {
        Counted {
            inner: stream,
            bytes: self.bytes.clone(),
        }
    }
}

impl Drop for ConnectionObservation {
    fn drop(&mut self) {
        let record = &mut self.record;
        record.duration = self.started.elapsed();
        record.bytes_in = self.bytes.from_client.load(Ordering::Relaxed);
        record.bytes_out = self.bytes.to_client.load(Ordering::Relaxed);
        let record = &self.record;
        self.observer
            .each_sink(|sink| sink.connection_closed(record));
    }
}

/// The client's stream, counting what is read from and written to it.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    bytes: Arc<Bytes>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.bytes
                .from_client
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(written)) = &polled {
            self.bytes
                .to_client
                .fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &polled {
            self.bytes
                .to_client
                .fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
