//! HTTP proxying: the server side of a listener, pooled clients to
//! upstreams, and what must change on a request between the two.

pub mod buffered;
pub mod client;
pub mod errors;
pub mod forward;
pub mod headers;
mod server;
pub mod upgrade;

pub use server::serve;

use self::buffered::Buffered;
use crate::observe::CallerBody;
use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// How often HTTP/2 peers (callers and upstreams) are pinged, and how long
/// they have to answer before their connection is closed: a peer that
/// vanished without a FIN fails within interval + timeout.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// What the proxy sends upstream: the caller's body as it streams in, or a
/// body held in memory (empty when a bodiless request is replayed to another
/// endpoint; the buffered body of a request a Retry policy may send again).
pub type RequestBody = Either<CallerBody, Buffered>;

/// What the proxy answers: the upstream's body as it streams in, or a
/// message the proxy wrote itself.
pub type ResponseBody = Either<UpstreamBody, Full<Bytes>>;

/// An upstream's response body: from the proxy's HTTP/1.1 client, or from
/// hyper's (HTTP/2, and HTTP/1.1 upgrades).
#[derive(Debug)]
pub enum UpstreamBody {
    H1(client::h1::Body),
    Hyper(Incoming),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = client::h1::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::H1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::H1(body) => body.is_end_stream(),
            UpstreamBody::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::H1(body) => body.size_hint(),
            UpstreamBody::Hyper(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests;
