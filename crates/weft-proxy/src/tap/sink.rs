//! The hub as an observation sink: each finished request is offered to the
//! running taps, and turned into a `TapRequest` only for a tap it matches.

use weft_api::proto::TapRequest;

use super::TapHub;
use crate::observe::{RequestRecord, Sink};

impl Sink for TapHub {
    fn request(&self, record: &RequestRecord) {
        self.offer(&record.method, record.path(), |tap_id| {
            to_event(tap_id, record)
        });
    }
}

/// The record as tap `tap_id`'s event.
pub fn to_event(tap_id: u64, r: &RequestRecord) -> TapRequest {
    let start_unix_ms = r
        .start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    TapRequest {
        tap_id,
        direction: r.direction().as_str().to_owned(),
        source_service: r.source_service().to_owned(),
        destination_service: r.destination_service().to_owned(),
        method: r.method.as_str().to_owned(),
        authority: r.authority().to_owned(),
        path: r.path().to_owned(),
        status: u32::from(r.status),
        start_unix_ms,
        head_latency_us: micros(r.head_latency),
        duration_us: micros(r.duration),
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        upstream: r.upstream.map(|a| a.to_string()).unwrap_or_default(),
        trace_id: r.trace.map(|t| hex(&t.trace_id)).unwrap_or_default(),
        route: r.route().to_owned(),
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
