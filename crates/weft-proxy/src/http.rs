//! HTTP proxying: the server side of a listener, pooled clients to
//! upstreams, and what must change on a request between the two.

pub mod buffered;
pub mod client;
pub mod errors;
pub mod forward;
pub mod headers;
pub mod upgrade;

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
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use self::buffered::Buffered;
use crate::drain::Watch;

/// What the proxy sends upstream: the caller's body as it streams in, or a
/// body held in memory (empty when a bodiless request is replayed to another
/// endpoint; the buffered body of a request a Retry policy may send again).
pub type RequestBody = Either<Incoming, Buffered>;

/// What the proxy answers: the upstream's body as it streams in, or a
/// message the proxy wrote itself.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// How often an idle HTTP/2 peer is pinged, and how long it has to answer
/// before its connection is closed.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a new connection may take to send its first complete request
/// head before it is closed (hyper's HTTP/1.1 header-read timeout, for the
/// requests after it, is 30 s too).
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 and HTTP/2 (told apart by the HTTP/2 preface) on one
/// accepted connection, plaintext or TLS, until the peer closes it.
///
/// When `drain` fires, requests in flight finish, then the connection
/// closes: HTTP/2 sends GOAWAY, HTTP/1.1 closes after the current response.
/// A connection without a request within [`FIRST_REQUEST_TIMEOUT`] is
/// closed.
pub async fn serve<S, F, Fut, B>(stream: S, handler: F, mut drain: Watch)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timers enable hyper's header-read timeout (HTTP/1.1, which also
    // closes idle keep-alive connections) and keep-alive pings (HTTP/2,
    // which close connections to peers that stopped answering). They only
    // start once hyper knows the protocol: telling the two apart reads the
    // first bytes with no timer, so until the first request a peer that
    // sends nothing (or part of the HTTP/2 preface) is cut off by ours.
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    // Set once hyper hands over a complete request head. A flag read when
    // the timer fires costs less per request than cancelling the timer.
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let started = started.clone();
        hyper::service::service_fn(move |req| {
            started.store(true, Ordering::Relaxed);
            let response = handler(req);
            async move { Ok::<_, Infallible>(response.await) }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let first_request = tokio::time::sleep(FIRST_REQUEST_TIMEOUT);
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
    if let Err(e) = result {
        // Peers that vanish or send garbage end here; hyper has already
        // answered what could be answered (e.g. 400 for a bad request).
        debug!(error = %errors::chain(e.as_ref()), "HTTP connection ended with an error");
    }
}

#[cfg(test)]
mod tests;
