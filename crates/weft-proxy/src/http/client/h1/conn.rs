//! One upstream connection of the HTTP/1.1 client: the stream, its read
//! buffer, and the bytes queued for writing.
//!
//! A connection is boxed once, when it is dialled, and only the box moves
//! afterwards: between the pool, the request being sent and the response
//! body that reads the rest of the answer.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, Waker, ready},
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::{io::AsyncWrite, time::Instant};

use super::exchange::Exchange;
use crate::tls::client::PeerStream;

/// How much room a read asks for: a small response in one read, and a
/// large body in reads of a useful size.
const READ_SIZE: usize = 16 * 1024;

/// Less room than this left in the read buffer gets a new one. Heads and
/// bodies are cut out of the buffer as they are read, so small responses
/// share one allocation until it is used up.
const MIN_READ: usize = 2 * 1024;

/// Data frames up to this size are copied next to their framing, so a
/// small body goes out with its head in one write; larger ones are queued
/// as they are.
const COPY_LIMIT: usize = 4 * 1024;

/// Most buffers handed to one vectored write.
const MAX_SLICES: usize = 16;

#[derive(Debug)]
pub struct Conn {
    io: PeerStream,
    /// Bytes read and not yet consumed.
    pub(super) read: BytesMut,
    /// Framing (and small data) being assembled, after everything queued.
    pub(super) scratch: BytesMut,
    queued: VecDeque<Bytes>,
    /// The request and response in progress on this connection.
    pub(super) exchange: Exchange,
    /// When the connection last went back to the pool.
    pub(in crate::http::client) idle_since: Instant,
}

impl Conn {
    pub fn new(io: PeerStream) -> Box<Self> {
        Box::new(Self {
            io,
            read: BytesMut::new(),
            scratch: BytesMut::new(),
            queued: VecDeque::new(),
            exchange: Exchange::default(),
            idle_since: Instant::now(),
        })
    }

    /// Queues `data` after what is already queued.
    pub(super) fn push(&mut self, data: Bytes) {
        if data.len() <= COPY_LIMIT {
            self.scratch.extend_from_slice(&data);
        } else {
            self.seal();
            self.queued.push_back(data);
        }
    }

    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.queued.push_back(self.scratch.split().freeze());
        }
    }

    /// Bytes waiting to be written.
    pub(super) fn pending(&self) -> usize {
        self.scratch.len() + self.queued.iter().map(Bytes::len).sum::<usize>()
    }

    /// Writes some of what is queued (in one write); `Ok(true)` once nothing
    /// is left and the stream is flushed.
    pub(super) fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.queued.is_empty() {
            if self.scratch.is_empty() {
                return Pin::new(&mut self.io).poll_flush(cx).map_ok(|()| true);
            }
            // The common case, a head alone: written from the scratch
            // buffer, whose memory then serves the next request.
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.scratch))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.scratch.advance(n);
            return Poll::Ready(Ok(false));
        }
        self.seal();
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = self.queued.len().min(MAX_SLICES);
        for (slice, bytes) in slices.iter_mut().zip(&self.queued) {
            *slice = IoSlice::new(bytes);
        }
        let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.consume_written(n);
        Poll::Ready(Ok(false))
    }

    fn consume_written(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.queued.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.queued.pop_front();
        }
    }

    /// Reads more into the read buffer: `Ok(0)` at the end of the stream.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < MIN_READ {
            self.read.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }

    /// Whether an idle connection may take a request: the upstream has
    /// neither closed it nor sent anything unasked. Costs no system call
    /// unless the stream has turned readable since it was last read.
    pub(in crate::http::client) fn is_usable(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_fill(&mut cx).is_pending()
    }
}
