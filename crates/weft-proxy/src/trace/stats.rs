//! Counters of the span pipeline, shown on the admin `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// One per proxy; survives Tracing policy changes.
#[derive(Debug, Default)]
pub struct TraceStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    export_failures: AtomicU64,
}

impl TraceStats {
    pub fn exported(&self, spans: u64) {
        self.exported.fetch_add(spans, Ordering::Relaxed);
    }

    /// Spans that never reached a collector: the queue was full, or their
    /// batch's export failed or timed out.
    pub fn dropped(&self, spans: u64) {
        self.dropped.fetch_add(spans, Ordering::Relaxed);
    }

    pub fn export_failed(&self) {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn exported_total(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text format.
    pub fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        crate::metrics::encode::atomic_counters(
            encoder,
            &[
                (
                    "weft_trace_spans_exported",
                    "Spans a collector accepted.",
                    &self.exported,
                ),
                (
                    "weft_trace_spans_dropped",
                    "Spans dropped: queue full, or export failed.",
                    &self.dropped,
                ),
                (
                    "weft_trace_export_failures",
                    "Span exports that failed or timed out.",
                    &self.export_failures,
                ),
            ],
        )
    }
}
