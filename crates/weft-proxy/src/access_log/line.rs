//! The JSON line of one request or one TCP connection. Field names are
//! part of the user-facing format (README "AccessLog").

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::{
    observe::{ConnectionRecord, RequestRecord},
    trace::context::hex,
};

pub fn request(r: &RequestRecord) -> String {
    let trace = r.trace.as_ref();
    json!({
        "time": time(r.start),
        "type": "http",
        "direction": r.edge.direction.as_str(),
        "sourceService": &*r.edge.source_service,
        "destinationService": &*r.edge.destination_service,
        "method": r.method.as_str(),
        "authority": r.authority(),
        "path": r.path(),
        "status": r.status,
        "durationMs": millis(r.duration),
        "bytesIn": r.bytes_in,
        "bytesOut": r.bytes_out,
        "upstream": r.upstream.map(|a| a.to_string()),
        "route": Some(&*r.edge.route).filter(|s| !s.is_empty()),
        "retries": r.retries,
        "traceId": trace.map(|t| hex(&t.trace_id)),
        "spanId": trace.map(|t| hex(&t.span_id)),
    })
    .to_string()
}

pub fn connection(c: &ConnectionRecord) -> String {
    json!({
        "time": time(c.start),
        "type": "tcp",
        "direction": c.edge.direction.as_str(),
        "sourceService": &*c.edge.source_service,
        "destinationService": &*c.edge.destination_service,
        "peer": c.peer.map(|a| a.to_string()),
        "upstream": c.upstream.map(|a| a.to_string()),
        "durationMs": millis(c.duration),
        "bytesIn": c.bytes_in,
        "bytesOut": c.bytes_out,
    })
    .to_string()
}

/// RFC 3339 in UTC with milliseconds.
fn time(t: SystemTime) -> Value {
    Value::String(humantime::format_rfc3339_millis(t).to_string())
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}
