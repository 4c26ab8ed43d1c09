//! HTTP proxying: the server side of a listener, pooled clients to
//! upstreams, and what must change on a request between the two.

pub mod client;
pub mod errors;
pub mod forward;
pub mod headers;
pub mod upgrade;

use std::{convert::Infallible, future::Future};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use crate::drain::Watch;

/// What the proxy sends upstream: the caller's body as it streams in, or
/// nothing when a bodiless request is replayed to another endpoint.
pub type RequestBody = Either<Incoming, Empty<Bytes>>;

/// What the proxy answers: the upstream's body as it streams in, or a
/// message the proxy wrote itself.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// How often an idle HTTP/2 peer is pinged, and how long it has to answer
/// before its connection is closed.
const H2_KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);
const H2_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves HTTP/1.1 and HTTP/2 (told apart by the HTTP/2 preface) on one
/// accepted connection, plaintext or TLS, until the peer closes it.
///
/// When `drain` fires, requests in flight finish, then the connection
/// closes: HTTP/2 sends GOAWAY, HTTP/1.1 closes after the current response.
pub async fn serve<S, F, Fut>(stream: S, handler: F, mut drain: Watch)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timers enable hyper's header-read timeout (HTTP/1.1) and
    // keep-alive pings (HTTP/2): a silent peer must not hold a task forever.
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEPALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    let service = hyper::service::service_fn(move |req| {
        let response = handler(req);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = drain.signaled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // Peers that vanish or send garbage end here; hyper has already
        // answered what could be answered (e.g. 400 for a bad request).
        debug!(error = %errors::chain(e.as_ref()), "HTTP connection ended with an error");
    }
}
