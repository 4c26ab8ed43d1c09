//! When an HTTP/1.1 keep-alive connection is idle, told from outside
//! hyper: no response open, the latest request had no body left for hyper
//! to drain, and everything hyper wrote reached the socket. Only then may
//! the connection be taken back from hyper (see `super::http1`).
//!
//! The flags are set by the service (requests), the response body wrapper
//! and the IO wrapper, all polled by the connection's own task, so relaxed
//! atomics suffice; they are atomics only because hyper wants `Send` parts.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    task::{Context, Poll},
};

use http::{Method, Request, header::UPGRADE};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// The state of one HTTP/1.1 connection, shared by its pieces.
#[derive(Debug, Default)]
pub struct Cycle {
    /// Requests hyper dispatched on this connection so far.
    requests: AtomicUsize,
    /// Responses handed to hyper whose body hyper has not dropped yet.
    open_responses: AtomicUsize,
    /// The latest request had a body or asked for an upgrade: hyper may
    /// still be reading bytes that belong to it.
    last_request_busy: AtomicBool,
    /// Nothing hyper wrote is waiting: hyper calls `flush` on the socket
    /// only once its own write buffer is empty, and any write after that
    /// clears the flag.
    flushed: AtomicBool,
    /// The listener drains: responses from now on say `Connection: close`.
    draining: AtomicBool,
}

impl Cycle {
    /// Records a request hyper dispatched to the service.
    pub fn request_started(&self, req: &Request<Incoming>) {
        self.requests.fetch_add(1, Relaxed);
        self.open_responses.fetch_add(1, Relaxed);
        let busy = !http_body::Body::is_end_stream(req.body())
            || req.method() == Method::CONNECT
            || req.headers().contains_key(UPGRADE);
        self.last_request_busy.store(busy, Relaxed);
    }

    /// Whether hyper holds nothing of the exchange: its connection can be
    /// dropped and a new one started later on the same socket, with the
    /// bytes hyper had already read.
    pub fn is_idle(&self) -> bool {
        self.open_responses.load(Relaxed) == 0
            && !self.last_request_busy.load(Relaxed)
            && self.flushed.load(Relaxed)
    }

    /// hyper holds part of the next request: taking the connection apart
    /// now would only hand the same bytes to the next one, so it stays
    /// until that request has arrived in full.
    pub fn keep_until_next_request(&self) {
        self.last_request_busy.store(true, Relaxed);
    }

    pub fn has_started(&self) -> bool {
        self.requests() > 0
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    pub fn wrote(&self) {
        self.flushed.store(false, Relaxed);
    }

    pub fn flushed(&self) {
        self.flushed.store(true, Relaxed);
    }
}

/// A response body that tells the [`Cycle`] when hyper is done with it
/// (dropped after its last frame, or on an error that ends the connection).
#[derive(Debug)]
pub struct Tracked<B> {
    inner: B,
    cycle: Arc<Cycle>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, cycle: Arc<Cycle>) -> Self {
        Self { inner, cycle }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.cycle.open_responses.fetch_sub(1, Relaxed);
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Empty;

    use super::*;

    #[test]
    fn idle_only_when_flushed_with_no_open_response() {
        let cycle = Arc::new(Cycle::default());
        cycle.flushed();
        assert!(cycle.is_idle());
        cycle.open_responses.fetch_add(1, Relaxed);
        let body = Tracked::new(Empty::<bytes::Bytes>::new(), cycle.clone());
        assert!(!cycle.is_idle(), "a response is open");
        drop(body);
        cycle.wrote();
        assert!(!cycle.is_idle(), "written, not flushed");
        cycle.flushed();
        assert!(cycle.is_idle());
        cycle.last_request_busy.store(true, Relaxed);
        assert!(!cycle.is_idle(), "a request body may be left");
    }
}
