//! The server side of a listener: HTTP/1.1 and HTTP/2 (told apart by the
//! HTTP/2 preface) on one accepted connection, plaintext or TLS, until the
//! peer closes it or the listener drains.
//!
//! HTTP/1.1 keep-alive connections are handed back and forth between hyper
//! and a bare socket (see [`http1`]): while a connection waits for its next
//! request it holds no hyper buffers, which is most of what an idle
//! connection would otherwise cost (about 25 KB each).

mod cycle;
mod deadline;
mod detect;
pub mod http1;
mod io;

use std::{
    convert::Infallible,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Instant,
};
use tracing::debug;

pub use self::io::Park;
use self::{cycle::Cycle, detect::Detected, io::Io};
use super::{H2_KEEPALIVE_INTERVAL, H2_KEEPALIVE_TIMEOUT, errors};
use crate::drain::Watch;

/// How long a new connection may take to send its first complete request
/// head before it is closed.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection that has not sent a request yet may still take
/// to send one once its listener drains: it connected before the drain,
/// and its request may be on its way already.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How long an HTTP/1.1 connection may wait for its next request head to
/// be complete once its responses are done: it ends idle keep-alive
/// connections and bounds a slowly sent head alike (what hyper's
/// header-read timeout does, kept by `http1` with one timer per spell).
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 and HTTP/2 on one accepted connection.
///
/// When `drain` fires, requests in flight finish, then the connection
/// closes: HTTP/2 sends GOAWAY, HTTP/1.1 closes after the current response
/// (at once if idle). A connection whose next request may be on its way
/// (a new one, or one that has just sent bytes) gets [`DRAIN_GRACE`] for
/// that request and is closed after answering it. A connection without a
/// request within [`FIRST_REQUEST_TIMEOUT`] is closed.
pub async fn serve<S, F, Fut, B>(mut stream: S, handler: F, mut drain: Watch)
where
    S: Park + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let deadline = Instant::now() + FIRST_REQUEST_TIMEOUT;
    // Boxed: the detection's state (a timer, the drain watch, the read)
    // would otherwise stay in the task's size for the connection's life.
    let Some(detected) = Box::pin(detect_first(&mut stream, &mut drain, deadline)).await else {
        return;
    };
    let handler = Arc::new(handler);
    match detected {
        Detected::Closed => {}
        Detected::Http1(read) => http1::serve(stream, read, handler, drain, deadline).await,
        // Boxed: hyper's HTTP/2 state is large, and inline it would make
        // every connection's task that large, idle HTTP/1.1 ones included.
        Detected::Http2(read) => {
            Box::pin(serve_http2(stream, read, handler, drain, deadline)).await
        }
    }
}

/// Reads enough of a new connection to tell its protocol, by `deadline`.
/// A drain does not close it at once: its peer connected before the drain
/// and may well have sent a request already (closing a socket with unread
/// bytes resets it), so it gets [`DRAIN_GRACE`] more to be told apart.
async fn detect_first<S>(stream: &mut S, drain: &mut Watch, deadline: Instant) -> Option<Detected>
where
    S: AsyncRead + Unpin,
{
    let detection = detect::detect(stream);
    tokio::pin!(detection);
    let grace_end = tokio::select! {
        detected = &mut detection => return Some(detected),
        () = tokio::time::sleep_until(deadline) => {
            debug!(timeout = ?FIRST_REQUEST_TIMEOUT, "no request on a new connection in time; closing it");
            return None;
        }
        () = drain.signaled() => deadline.min(Instant::now() + DRAIN_GRACE),
    };
    let detected = tokio::time::timeout_at(grace_end, detection).await.ok();
    if detected.is_none() {
        debug!(grace = ?DRAIN_GRACE, "no request on a new connection while draining; closing it");
    }
    detected
}

/// One HTTP/2 connection, multiplexed by hyper from start to end.
async fn serve_http2<S, F, Fut, B>(
    stream: S,
    read: Bytes,
    handler: Arc<F>,
    mut drain: Watch,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // The timer enables keep-alive pings, which close connections to peers
    // that stopped answering.
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let started = started.clone();
        hyper::service::service_fn(move |req| {
            started.store(true, Ordering::Relaxed);
            let response = handler(req);
            async move { Ok::<_, Infallible>(response.await) }
        })
    };
    // HTTP/2 does not take the connection back, so it reports to no one.
    let io = Io::new(read, stream, Arc::new(Cycle::default()));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let first_request = tokio::time::sleep_until(deadline);
    tokio::pin!(first_request);
    let mut waiting = true;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = drain.signaled() => {
                connection.as_mut().graceful_shutdown();
                break connection.await;
            }
            () = first_request.as_mut(), if waiting => {
                if started.load(Ordering::Relaxed) {
                    waiting = false;
                    continue;
                }
                debug!(timeout = ?FIRST_REQUEST_TIMEOUT, "no request on a new connection in time; closing it");
                return;
            }
        }
    };
    log_end(result);
}

/// Peers that vanish or send garbage end here; hyper has already answered
/// what could be answered (e.g. 400 for a bad request).
fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        debug!(error = %errors::chain(&e), "HTTP connection ended with an error");
    }
}
