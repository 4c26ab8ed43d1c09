//! When an HTTP/1.1 keep-alive connection is idle, told from outside
//! hyper: no response open, the latest request had no body left for hyper
//! to drain, and everything hyper wrote reached the socket. Only then may
//! the connection be taken back from hyper (see `super::http1`).
//!
//! The flags are set by the service (requests), the response body wrapper
//! and the IO wrapper, all polled by the connection's own task, so relaxed
//! atomics suffice; they are atomics only because hyper wants `Send` parts.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    task::{Context, Poll},
};

use http::{
    HeaderValue, Method, Request, Response,
    header::{CONNECTION, UPGRADE},
};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;

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

    /// Every response so far is done: hyper waits for (or is reading) the
    /// next request head.
    pub fn awaits_request(&self) -> bool {
        self.open_responses.load(Relaxed) == 0
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

pin_project! {
    /// The service's future for one request: the handler's response, its
    /// body [`Tracked`], with `Connection: close` once the connection
    /// drains. A named future rather than an async block: the block would
    /// hold the handler's future twice (as captured, then as awaited),
    /// and hyper moves the whole future into place on every request.
    pub struct Tracking<F> {
        #[pin]
        response: F,
        cycle: Option<Arc<Cycle>>,
    }
}

impl<F> Tracking<F> {
    pub fn new(response: F, cycle: Arc<Cycle>) -> Self {
        Self {
            response,
            cycle: Some(cycle),
        }
    }
}

impl<F, B> Future for Tracking<F>
where
    F: Future<Output = Response<B>>,
{
    type Output = Result<Response<Tracked<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(mut response) = this.response.poll(cx) else {
            return Poll::Pending;
        };
        let Some(cycle) = this.cycle.take() else {
            // Polled again after it completed: nothing left to give.
            return Poll::Pending;
        };
        if cycle.is_draining() {
            // The connection closes after this response.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response.map(|b| Tracked::new(b, cycle))))
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

    #[tokio::test]
    async fn tracking_stores_the_handler_future_once() {
        let cycle = Arc::new(Cycle::default());
        let big = [7u8; 2048];
        // `big` lives across the await, so it is part of the future.
        let handler = async move {
            tokio::task::yield_now().await;
            let mut response = Response::new(Empty::<bytes::Bytes>::new());
            response.extensions_mut().insert(big[0]);
            response
        };
        let handler_size = std::mem::size_of_val(&handler);
        let tracking = Tracking::new(handler, cycle.clone());
        assert!(
            std::mem::size_of_val(&tracking) <= handler_size + 16,
            "{} bytes for a {handler_size}-byte handler",
            std::mem::size_of_val(&tracking)
        );
        cycle.open_responses.fetch_add(1, Relaxed);
        cycle.start_draining();
        let Ok(response) = tracking.await;
        assert_eq!(response.headers()[CONNECTION], "close");
        drop(response);
        assert_eq!(
            cycle.open_responses.load(Relaxed),
            0,
            "the body reports its drop"
        );
    }
}
