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
use std::time::Duration;

use bytes::Bytes;
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
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

#[cfg(test)]
mod tests;
