//! What the proxy saw: one record per HTTP request and one per TCP
//! connection, handed to the sinks installed on the proxy-wide
//! [`Observer`] (metrics, access logs, tap, trace spans).
//!
//! The request sites (inbound, outbound with and without policies, and the
//! redirect listeners, which reuse those stacks) call [`Observer::begin`]
//! with the request and wrap the response through the returned
//! [`Observation`]; the record is complete, and handed to every sink, when
//! the response body has ended or been dropped. TCP sites do the same with
//! [`Observer::open`]. Sinks are swapped without locks, so config changes
//! never stall the request path, and a sink must not block: it pushes to a
//! bounded queue of its own when it has work to do.

mod connection;
mod request;

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime},
};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::{HeaderMap, HeaderValue, Method, Uri};

pub use self::{
    connection::ConnectionObservation,
    request::{CallerBody, Observation, Observed},
};

/// Which side of the proxy a request or connection crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a caller in the mesh to the local service.
    Inbound,
    /// From the local application to a service of the mesh.
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trace this proxy hop is part of, and its own span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

/// Who talks to whom over one stack: fixed for an outbound, per connection
/// for an inbound (the caller is known once its certificate is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub direction: Direction,
    /// Inbound: the caller's service from its SPIFFE identity, empty when
    /// unknown (plaintext). Outbound: the first service this Dataplane
    /// serves, empty when it serves none.
    pub source_service: Arc<str>,
    /// Inbound: the local service. Outbound: the outbound's service.
    pub destination_service: Arc<str>,
    /// Outbound: the TrafficRoute that routes this outbound, else empty.
    pub route: Arc<str>,
}

/// The endpoint that answered, put on the response by the forwarding
/// code for the observation to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamAddr(pub SocketAddr);

/// Extra tries a Retry policy made, put on the response when there were any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries(pub u32);

/// One finished HTTP request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub edge: Arc<Edge>,
    pub method: Method,
    pub uri: Uri,
    /// The `Host` header of an HTTP/1 request (HTTP/2 carries the
    /// authority in the URI).
    pub host: Option<HeaderValue>,
    /// The status the client got, including answers the proxy made
    /// itself (403, 429, 503, 504); 0 when the client went away first.
    pub status: u16,
    pub start: SystemTime,
    /// Until the response head.
    pub head_latency: Duration,
    /// Until the end of the response body.
    pub duration: Duration,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// The endpoint (outbound) or local service (inbound) that answered.
    pub upstream: Option<SocketAddr>,
    /// Set when a tracer is installed.
    pub trace: Option<TraceIds>,
    /// Extra tries made by a Retry policy.
    pub retries: u32,
}

impl RequestRecord {
    pub fn direction(&self) -> Direction {
        self.edge.direction
    }

    pub fn source_service(&self) -> &str {
        &self.edge.source_service
    }

    pub fn destination_service(&self) -> &str {
        &self.edge.destination_service
    }

    pub fn route(&self) -> &str {
        &self.edge.route
    }

    /// The authority the client asked for: the URI's, else `Host`, else empty.
    pub fn authority(&self) -> &str {
        match (self.uri.authority(), &self.host) {
            (Some(authority), _) => authority.as_str(),
            (None, Some(host)) => host.to_str().unwrap_or(""),
            (None, None) => "",
        }
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// One TCP connection: opaque traffic through a `tcp` inbound or outbound.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub edge: Arc<Edge>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Where the connection went, once connected.
    pub upstream: Option<SocketAddr>,
    pub start: SystemTime,
    /// Zero when the connection has just opened.
    pub duration: Duration,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
}

/// A consumer of records. Called on the request path: it must not block.
pub trait Sink: Send + Sync + 'static {
    fn request(&self, _record: &RequestRecord) {}
    fn connection_opened(&self, _conn: &ConnectionRecord) {}
    fn connection_closed(&self, _conn: &ConnectionRecord) {}
}

/// Joins or starts a trace for a request before it is forwarded: reads
/// the incoming propagation headers, rewrites them for the next hop, and
/// says which span this hop is.
pub trait Tracer: Send + Sync + 'static {
    fn begin(&self, direction: Direction, headers: &mut HeaderMap) -> Option<TraceIds>;
}

/// The installed sinks, by slot name.
#[derive(Default)]
struct Sinks(Vec<(&'static str, Arc<dyn Sink>)>);

/// A tracer behind a sized pointer, for `ArcSwapOption`.
struct TracerSlot(Arc<dyn Tracer>);

/// The proxy-wide observation state: one per proxy process.
#[derive(Default)]
pub struct Observer {
    sinks: ArcSwap<Sinks>,
    tracer: ArcSwapOption<TracerSlot>,
    local_service: OnceLock<Arc<str>>,
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sinks = self.sinks.load();
        let names: Vec<&str> = sinks.0.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Observer")
            .field("sinks", &names)
            .field("tracer", &self.tracer.load().is_some())
            .finish()
    }
}

impl Observer {
    /// Puts `sink` in `slot` (replacing what was there), or empties the
    /// slot with `None`. Records already in flight go to the sinks of the
    /// moment they finish.
    pub fn install(&self, slot: &'static str, sink: Option<Arc<dyn Sink>>) {
        self.sinks.rcu(|current| {
            let mut next: Vec<_> = current
                .0
                .iter()
                .filter(|(name, _)| *name != slot)
                .cloned()
                .collect();
            if let Some(sink) = &sink {
                next.push((slot, sink.clone()));
            }
            Sinks(next)
        });
    }

    pub fn set_tracer(&self, tracer: Option<Arc<dyn Tracer>>) {
        self.tracer.store(tracer.map(|t| Arc::new(TracerSlot(t))));
    }

    /// The service outbound records name as their source. Set once, at
    /// start, from the Dataplane (a proxy's inbounds never change).
    pub fn set_local_service(&self, service: &str) {
        let _ = self.local_service.set(Arc::from(service));
    }

    pub fn local_service(&self) -> Arc<str> {
        self.local_service
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The edge of an outbound to `service`.
    pub fn outbound_edge(&self, service: &str, route: Option<&str>) -> Arc<Edge> {
        Arc::new(Edge {
            direction: Direction::Outbound,
            source_service: self.local_service(),
            destination_service: Arc::from(service),
            route: Arc::from(route.unwrap_or("")),
        })
    }

    fn trace(&self, direction: Direction, headers: &mut HeaderMap) -> Option<TraceIds> {
        let tracer = self.tracer.load();
        tracer.as_ref()?.0.begin(direction, headers)
    }

    fn each_sink(&self, f: impl Fn(&dyn Sink)) {
        for (_, sink) in self.sinks.load().0.iter() {
            f(sink.as_ref());
        }
    }
}

/// The edge of an inbound of `service` for a caller proving `callers`.
pub fn inbound_edge(service: &str, callers: &[String]) -> Arc<Edge> {
    Arc::new(Edge {
        direction: Direction::Inbound,
        source_service: Arc::from(callers.first().map_or("", String::as_str)),
        destination_service: Arc::from(service),
        route: Arc::from(""),
    })
}

#[cfg(test)]
mod tests;
