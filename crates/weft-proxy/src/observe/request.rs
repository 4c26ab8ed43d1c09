//! One HTTP request under observation: [`Observer::begin`] takes the
//! request (tracing headers, a byte count on its body), [`Observation::respond`]
//! wraps the response, and the wrapped body hands the finished record to the
//! sinks when it ends or is dropped — whichever comes first, exactly once.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Instant, SystemTime},
};

use bytes::Buf;
use http::{Request, Response, header::HOST};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::{Edge, Observer, RequestRecord, Retries, UpstreamAddr};

/// The caller's request body, counting the bytes read from it.
#[derive(Debug)]
pub struct CallerBody {
    inner: Incoming,
    read: Arc<AtomicU64>,
}

impl Body for CallerBody {
    type Data = <Incoming as Body>::Data;
    type Error = <Incoming as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.read
                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request being served: what the record needs from its start.
///
/// Boxed, since it travels inside the response body: hyper moves a
/// response several times per request, and the record inline would be
/// most of what each move copies.
pub struct Observation(Box<Pending>);

struct Pending {
    observer: Arc<Observer>,
    record: RequestRecord,
    started: Instant,
    read: Arc<AtomicU64>,
}

impl Observer {
    /// Starts observing `req` on `edge`: joins or starts its trace (which
    /// may rewrite the propagation headers) and counts its body.
    pub fn begin(
        self: &Arc<Self>,
        edge: &Arc<Edge>,
        req: Request<Incoming>,
    ) -> (Observation, Request<CallerBody>) {
        let (mut head, body) = req.into_parts();
        let trace = self.trace(edge.direction, &mut head.headers);
        let read = Arc::new(AtomicU64::new(0));
        let record = RequestRecord {
            edge: edge.clone(),
            method: head.method.clone(),
            uri: head.uri.clone(),
            host: match head.uri.authority() {
                Some(_) => None,
                None => head.headers.get(HOST).cloned(),
            },
            status: 0,
            start: SystemTime::now(),
            head_latency: Default::default(),
            duration: Default::default(),
            bytes_in: 0,
            bytes_out: 0,
            upstream: None,
            trace,
            retries: 0,
        };
        let observation = Observation(Box::new(Pending {
            observer: self.clone(),
            record,
            started: Instant::now(),
            read: read.clone(),
        }));
        let body = CallerBody { inner: body, read };
        (observation, Request::from_parts(head, body))
    }
}

impl Observation {
    /// Wraps the response the client gets; the record is finished when
    /// its body is.
    pub fn respond<B>(mut self, response: Response<B>) -> Response<Observed<B>> {
        let pending = &mut *self.0;
        let record = &mut pending.record;
        record.status = response.status().as_u16();
        record.head_latency = pending.started.elapsed();
        let extensions = response.extensions();
        record.upstream = extensions.get::<UpstreamAddr>().map(|u| u.0);
        record.retries = extensions.get::<Retries>().map_or(0, |r| r.0);
        response.map(|inner| Observed {
            inner,
            pending: Some(self),
        })
    }

    fn finish(mut self) {
        self.0.report();
    }

    fn count_out(&mut self, bytes: u64) {
        self.0.record.bytes_out += bytes;
    }
}

impl Pending {
    fn report(&mut self) {
        let record = &mut self.record;
        record.duration = self.started.elapsed();
        record.bytes_in = self.read.load(Ordering::Relaxed);
        let record = &self.record;
        self.observer.each_sink(|sink| sink.request(record));
    }
}

impl Drop for Pending {
    /// A request whose response never came (the client went away, or the
    /// handler was cancelled) is recorded with status 0; one that got a
    /// response was recorded by `finish` already.
    fn drop(&mut self) {
        if self.record.status == 0 {
            self.report();
        }
    }
}

/// A response body under observation.
pub struct Observed<B> {
    inner: B,
    pending: Option<Observation>,
}

impl<B> Observed<B> {
    fn end(&mut self) {
        if let Some(observation) = self.pending.take() {
            observation.finish();
        }
    }
}

impl<B> Drop for Observed<B> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<B> Body for Observed<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(pending)) = (frame.data_ref(), self.pending.as_mut()) {
                    pending.count_out(data.remaining() as u64);
                }
                if self.inner.is_end_stream() {
                    self.end();
                }
            }
            Poll::Ready(None | Some(Err(_))) => self.end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
