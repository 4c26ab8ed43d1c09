//! The glue to the proxy's observer: a [`Tracer`] that joins or starts
//! traces by the Tracing policy's sampling, and a [`Sink`] that turns the
//! sampled requests into spans for the exporter.

use std::sync::Arc;

use http::HeaderMap;

use super::{
    export::SpanExporter,
    span::{SpanData, SpanKind, Value, is_error},
};
use crate::observe::{Direction, RequestRecord, Sink, TraceIds, Tracer};

/// Propagation for every request, inbound and outbound alike.
#[derive(Debug, Clone, Copy)]
pub struct HeaderTracer {
    pub sampling_ppm: u32,
}

impl Tracer for HeaderTracer {
    fn begin(&self, _direction: Direction, headers: &mut HeaderMap) -> Option<TraceIds> {
        let span = super::begin(headers, self.sampling_ppm);
        Some(TraceIds {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            sampled: span.sampled,
        })
    }
}

/// Sampled requests become spans: SERVER for inbound, CLIENT for outbound.
#[derive(Debug)]
pub struct SpanSink {
    pub exporter: SpanExporter,
    /// The policy's extra tags.
    pub tags: Arc<Vec<(String, String)>>,
    /// The service name for spans of a proxy that serves none.
    pub fallback_service: Arc<str>,
}

impl Sink for SpanSink {
    fn request(&self, record: &RequestRecord) {
        if let Some(trace) = record.trace.filter(|t| t.sampled) {
            self.exporter.push(self.span(record, trace));
        }
    }
}

impl SpanSink {
    fn span(&self, r: &RequestRecord, trace: TraceIds) -> SpanData {
        let edge = &r.edge;
        let (kind, local, remote) = match edge.direction {
            Direction::Inbound => (
                SpanKind::Server,
                &edge.destination_service,
                &edge.source_service,
            ),
            Direction::Outbound => (
                SpanKind::Client,
                &edge.source_service,
                &edge.destination_service,
            ),
        };
        let local = if local.is_empty() {
            self.fallback_service.clone()
        } else {
            local.clone()
        };
        let text = |s: &str| Value::Str(s.to_owned());
        let mut attributes = vec![
            ("http.request.method", text(r.method.as_str())),
            ("url.path", text(r.path())),
            ("server.address", text(r.authority())),
            ("http.response.status_code", Value::Int(i64::from(r.status))),
            ("weft.direction", text(edge.direction.as_str())),
            ("weft.source_service", text(&edge.source_service)),
            ("weft.destination_service", text(&edge.destination_service)),
        ];
        if !remote.is_empty() {
            attributes.push(("peer.service", text(remote)));
        }
        if !edge.route.is_empty() {
            attributes.push(("weft.route", text(&edge.route)));
        }
        if let Some(upstream) = r.upstream {
            attributes.push(("weft.upstream", Value::Str(upstream.to_string())));
        }
        if r.retries > 0 {
            attributes.push(("weft.retries", Value::Int(i64::from(r.retries))));
        }
        SpanData {
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            parent_span_id: trace.parent_span_id,
            name: format!("{} {}", r.method, r.path()),
            kind,
            start: r.start,
            duration: r.duration,
            local_service: local,
            remote_service: remote.clone(),
            remote_address: match edge.direction {
                Direction::Outbound => r.upstream,
                Direction::Inbound => None,
            },
            // 0: the client went away before an answer.
            error: r.status == 0 || is_error(kind, r.status),
            attributes,
            tags: self.tags.clone(),
        }
    }
}
