//! A finished span as the exporters see it: built from one proxied request,
//! independent of the wire format it is sent in.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

/// Which side of the call this span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// An inbound request: the proxy serves it for the local service.
    Server,
    /// An outbound request: the proxy calls another service for the app.
    Client,
}

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
}

/// A span of one proxy hop.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub duration: Duration,
    /// The service this proxy hop acts for (`service.name`).
    pub local_service: Arc<str>,
    /// The other side's service, "" if unknown.
    pub remote_service: Arc<str>,
    /// The other side's address, if known.
    pub remote_address: Option<SocketAddr>,
    /// An error status (5xx for a server span, 4xx or 5xx for a client).
    pub error: bool,
    pub attributes: Vec<(&'static str, Value)>,
    /// The Tracing policy's extra tags.
    pub tags: Arc<Vec<(String, String)>>,
}

impl SpanData {
    /// Nanoseconds since the UNIX epoch (0 for a clock before it).
    pub fn start_unix_nanos(&self) -> u64 {
        nanos(self.start)
    }

    pub fn end_unix_nanos(&self) -> u64 {
        nanos(self.start + self.duration)
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Whether `status` marks the span as failed, by OpenTelemetry's HTTP
/// rules: a server failed on 5xx; a client also on 4xx (its request was
/// refused).
pub fn is_error(kind: SpanKind, status: u16) -> bool {
    match kind {
        SpanKind::Server => status >= 500,
        SpanKind::Client => status >= 400,
    }
}
