//! HTTP/1.1 connections, served by hyper one busy spell at a time.
//!
//! hyper keeps a read and a write buffer (8 KB each, often more) for as long
//! as its connection object lives, idle or not. So once a keep-alive
//! connection is idle (see [`Cycle::is_idle`]) the connection object is
//! taken apart: the socket and any bytes hyper had read of the next request
//! are kept, the rest is freed, and the bare socket waits for readability.
//! When the peer sends again, a new hyper connection starts with those
//! bytes first. Streams that cannot wait without reading (TLS) stay with
//! one hyper connection throughout.
//!
//! A connection is taken apart only after [`PARK_AFTER`] of idleness, so
//! that busy keep-alive connections do not pay for a new hyper connection
//! (and its buffers) on every request.

use std::{
    future::{Future, poll_fn},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use hyper::{body::Incoming, server::conn::http1::Builder};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Instant,
};
use tracing::debug;

use super::{
    DRAIN_GRACE, FIRST_REQUEST_TIMEOUT, KEEP_ALIVE_TIMEOUT,
    cycle::{Cycle, Tracking},
    deadline::Deadline,
    io::{Io, Park},
    log_end,
};
use crate::drain::{OnWake, Watch};

/// How long a connection stays idle in hyper before it is taken apart: a
/// peer that sends a request at least this often keeps its hyper buffers
/// (cheaper than rebuilding them per request), a quieter one gives them up.
pub const PARK_AFTER: Duration = Duration::from_millis(250);

/// Connections taken apart so far, for tests to see that it happens.
#[cfg(test)]
pub static PARKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How one hyper connection ended.
enum Spell<P> {
    /// The connection is closed (or upgraded and handed off).
    Over,
    /// Idle: the socket and unread bytes, ready for the next request.
    Idle(P),
}

/// Serves one HTTP/1.x connection until it closes. `read` are the bytes
/// read to tell the protocol; the first request head must be complete by
/// `first_deadline`.
pub async fn serve<S, F, Fut, B>(
    stream: S,
    read: Bytes,
    handler: Arc<F>,
    mut drain: Watch,
    first_deadline: Instant,
) where
    S: Park + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cycle = Arc::new(Cycle::default());
    let parks = stream.can_park();
    let mut service = {
        let cycle = cycle.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            cycle.request_started(&req);
            Tracking::new(handler(req), cycle.clone())
        })
    };
    let mut io = Io::new(read, stream, cycle.clone());
    let mut first = Some(first_deadline);
    loop {
        // Boxed, so that between spells the task holds only the socket.
        let connection = Box::pin(
            builder()
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades(),
        );
        // Boxed too: the spell's state only lives while hyper does.
        let spell = Box::pin(spell(connection, &cycle, parks, &mut drain, first.take()));
        let parts = match spell.await {
            Spell::Over => return,
            Spell::Idle(parts) => parts,
        };
        #[cfg(test)]
        PARKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (io, service) = take_apart(parts);
        if io.has_unread() {
            // Part of the next request is here already.
            cycle.keep_until_next_request();
            continue;
        }
        if !next_request(&io, &mut drain).await {
            return;
        }
    }
}

/// The socket (with the bytes hyper read of the next request put back)
/// and the service of an idle connection. A function of its own so that
/// what is left of `parts` is not kept in the task while it waits.
fn take_apart<S, Svc>(parts: Parts<S, Svc>) -> (Io<S>, Svc) {
    let mut io = parts.io.into_inner();
    io.unread(parts.read_buf);
    (io, parts.service)
}

/// A builder for one spell's hyper connection. Without hyper's timer:
/// the spell bounds the wait for each request head itself
/// ([`KEEP_ALIVE_TIMEOUT`]), with one timer per spell rather than one
/// hyper allocates and registers for every request.
fn builder() -> Builder {
    Builder::new()
}

/// Waits on a parked connection until the peer sends again (`true`), or it
/// stayed idle for [`KEEP_ALIVE_TIMEOUT`], or the listener drains (`false`).
/// This wait is what thousands of idle connections sit in, so it holds as
/// little as it can: the socket's readiness is polled, not awaited.
async fn next_request<S: Park>(io: &Io<S>, drain: &mut Watch) -> bool {
    let idle_limit = tokio::time::sleep(KEEP_ALIVE_TIMEOUT);
    tokio::pin!(idle_limit);
    let signaled = drain.signaled();
    tokio::pin!(signaled);
    poll_fn(|cx| {
        if io.get_ref().poll_readable(cx).is_ready() {
            return Poll::Ready(true);
        }
        if idle_limit.as_mut().poll(cx).is_ready() {
            debug!(timeout = ?KEEP_ALIVE_TIMEOUT, "keep-alive connection idle too long; closing it");
            return Poll::Ready(false);
        }
        if signaled.as_mut().poll(cx).is_ready() {
            // A request already sent is answered (closing would reset it).
            return Poll::Ready(io.get_ref().has_unread_bytes());
        }
        Poll::Pending
    })
    .await
}

/// Why [`spell`] stopped polling its connection.
enum End {
    /// No complete request head within [`KEEP_ALIVE_TIMEOUT`] (or the
    /// first request's deadline) of waiting for one.
    NoRequest,
    Closed(Result<(), hyper::Error>),
    Idle,
}

type Connection<S, Svc> = hyper::server::conn::http1::UpgradeableConnection<TokioIo<Io<S>>, Svc>;
type Parts<S, Svc> = hyper::server::conn::http1::Parts<TokioIo<Io<S>>, Svc>;

/// Runs a hyper connection until it closes or, when `parks`, goes idle.
/// With `first_deadline`, it must have received a request by then.
async fn spell<S, Svc, B>(
    mut connection: Pin<Box<Connection<S, Svc>>>,
    cycle: &Cycle,
    parks: bool,
    drain: &mut Watch,
    first_deadline: Option<Instant>,
) -> Spell<Parts<S, Svc>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<Incoming, ResBody = B> + Unpin,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let signaled = drain.signaled();
    tokio::pin!(signaled);
    // Polled on every wake-up of the connection, so through `OnWake`.
    let mut signaled = OnWake::new(signaled.as_mut());
    // Set while a drain waits for the request this spell started for.
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let spell_start = cycle.requests();
    let mut limits = Limits::new(
        spell_start,
        first_deadline.unwrap_or_else(|| Instant::now() + KEEP_ALIVE_TIMEOUT),
    );
    let deadline = Deadline::new(limits.next_request_due);
    tokio::pin!(deadline);
    let outcome = poll_fn(|cx| {
        if !cycle.is_draining() && signaled.poll(cx).is_ready() {
            cycle.start_draining();
            grace = Some(Box::pin(tokio::time::sleep(DRAIN_GRACE)));
        }
        // A spell starts because the peer sent bytes (or connected): its
        // first request is answered before the connection closes. After
        // that, requests in flight finish and an idle connection closes at
        // once.
        if let Some(wait) = grace.as_mut()
            && (cycle.requests() != spell_start || wait.as_mut().poll(cx).is_ready())
        {
            connection.as_mut().graceful_shutdown();
            grace = None;
        }
        match connection.as_mut().poll(cx) {
            Poll::Ready(result) => return Poll::Ready(End::Closed(result)),
            Poll::Pending if grace.is_some() && cycle.requests() != spell_start => {
                // The awaited request arrived: shut down once it is over,
                // which the next poll (now) tells hyper.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Pending => {}
        }
        let parks_now = parks && !cycle.is_draining() && cycle.is_idle();
        let (due, limit) = limits.update(cycle, parks_now);
        match due {
            Some(due) if deadline.as_mut().poll_due(cx, due).is_ready() => Poll::Ready(limit),
            _ => Poll::Pending,
        }
    })
    .await;
    match outcome {
        End::NoRequest if !cycle.has_started() => {
            debug!(timeout = ?FIRST_REQUEST_TIMEOUT, "no request on a new connection in time; closing it");
            Spell::Over
        }
        End::NoRequest => {
            debug!(timeout = ?KEEP_ALIVE_TIMEOUT, "no request head on a keep-alive connection in time; closing it");
            Spell::Over
        }
        End::Closed(result) => {
            log_end(result);
            Spell::Over
        }
        End::Idle => match Pin::into_inner(connection).into_parts() {
            Some(parts) => Spell::Idle(parts),
            None => Spell::Over,
        },
    }
}

/// The limits a spell's connection keeps to between requests, as the
/// deadlines of one [`Deadline`]: a request head must be complete within
/// [`KEEP_ALIVE_TIMEOUT`] once every earlier response is done (hyper's
/// header-read timeout, which also ends idle keep-alive connections), and
/// a connection that can park is taken apart after [`PARK_AFTER`] idle.
/// Each limit is counted from when its wait began, told apart by the
/// number of requests so far: the clock is read once per wait, not on
/// every wake-up.
struct Limits {
    /// Requests seen when the wait for the next request began.
    waiting_since: Option<usize>,
    next_request_due: Instant,
    /// Requests seen when the connection went idle, and when to park.
    idle: Option<(usize, Instant)>,
}

impl Limits {
    fn new(requests: usize, next_request_due: Instant) -> Self {
        Self {
            waiting_since: Some(requests),
            next_request_due,
            idle: None,
        }
    }

    /// The next deadline, if any, and what passing it means.
    fn update(&mut self, cycle: &Cycle, parks_now: bool) -> (Option<Instant>, End) {
        let requests = cycle.requests();
        let mut now = None;
        let mut now = || *now.get_or_insert_with(Instant::now);
        let waiting = cycle.awaits_request();
        if !waiting {
            self.waiting_since = None;
        } else if self.waiting_since != Some(requests) {
            self.waiting_since = Some(requests);
            self.next_request_due = now() + KEEP_ALIVE_TIMEOUT;
        }
        if !parks_now {
            self.idle = None;
        } else if self.idle.is_none_or(|(seen, _)| seen != requests) {
            self.idle = Some((requests, now() + PARK_AFTER));
        }
        match (waiting.then_some(self.next_request_due), self.idle) {
            (Some(request), Some((_, park))) if request <= park => (Some(request), End::NoRequest),
            (_, Some((_, park))) => (Some(park), End::Idle),
            (request, None) => (request, End::NoRequest),
        }
    }
}
