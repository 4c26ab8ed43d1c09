//! Distributed tracing in the proxy: joins or starts a trace for every
//! request (`context`, `begin`), turns finished requests into spans
//! (`span`) and exports them in batches off the request path (`export`)
//! to an OTLP/HTTP (`otlp`) or Zipkin v2 (`zipkin`) collector.
//!
//! A slow or dead collector costs dropped spans, never request latency:
//! spans go through a bounded queue, every export has a timeout, and what
//! cannot be sent is counted in [`TraceStats`].

pub mod context;
pub mod export;
pub mod otlp;
mod post;
mod sink;
pub mod span;
mod stats;
pub mod zipkin;

pub use sink::{HeaderTracer, SpanSink};
pub use stats::TraceStats;

use http::HeaderMap;

use self::context::{Incoming, Outgoing};

/// Joins the trace the headers carry, or starts one (recorded for
/// `sampling_ppm` of a million new traces), makes this hop's span id and
/// rewrites the headers for the next hop.
pub fn begin(headers: &mut HeaderMap, sampling_ppm: u32) -> Outgoing {
    let incoming: Incoming = context::extract(headers);
    let sampled = incoming
        .sampled
        .unwrap_or_else(|| fastrand::u32(0..1_000_000) < sampling_ppm);
    let (trace_id, parent_span_id) = match incoming.parent {
        Some(parent) => (parent.trace_id, Some(parent.span_id)),
        None => (new_id(), None),
    };
    let span = Outgoing {
        trace_id,
        span_id: new_id(),
        parent_span_id,
        sampled,
    };
    context::inject(headers, &span, &incoming);
    span
}

/// A random id that is not all zeros (which every format reserves).
fn new_id<const N: usize>() -> [u8; N] {
    loop {
        let mut id = [0u8; N];
        id.iter_mut().for_each(|b| *b = fastrand::u8(..));
        if id != [0; N] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn a_request_without_a_trace_starts_one_by_the_sampling_share() {
        let mut headers = HeaderMap::new();
        let span = begin(&mut headers, 1_000_000);
        assert!(span.sampled && span.parent_span_id.is_none());
        let joined = context::extract(&headers).parent.unwrap();
        assert_eq!(
            (joined.trace_id, joined.span_id),
            (span.trace_id, span.span_id)
        );

        let never = begin(&mut HeaderMap::new(), 0);
        assert!(!never.sampled);
    }

    #[test]
    fn a_joined_trace_keeps_the_callers_decision_and_gets_a_new_span() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let mut headers = HeaderMap::new();
        headers.insert(context::TRACEPARENT, HeaderValue::from_static(tp));
        let span = begin(&mut headers, 1_000_000);
        assert!(!span.sampled, "the caller said no");
        assert_eq!(
            context::hex(&span.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            span.parent_span_id.map(|p| context::hex(&p)).unwrap(),
            "00f067aa0ba902b7"
        );
        assert_ne!(context::hex(&span.span_id), "00f067aa0ba902b7");
    }

    #[test]
    fn a_bad_header_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert(
            context::TRACEPARENT,
            HeaderValue::from_static("00-nonsense"),
        );
        let span = begin(&mut headers, 1_000_000);
        assert!(span.parent_span_id.is_none() && span.sampled);
        let written = headers.get(context::TRACEPARENT).unwrap().to_str().unwrap();
        assert!(written.starts_with(&format!("00-{}-", context::hex(&span.trace_id))));
    }
}
