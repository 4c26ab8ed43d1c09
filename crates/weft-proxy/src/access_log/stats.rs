//! Counters of the access log writers, shown on the admin `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// One per proxy; survives AccessLog policy changes.
#[derive(Debug, Default)]
pub struct AccessLogStats {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl AccessLogStats {
    pub fn written(&self, lines: u64) {
        self.written.fetch_add(lines, Ordering::Relaxed);
    }

    /// Lines lost: the queue was full, or the target cannot be written.
    pub fn dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn written_total(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
                    "weft_access_log_lines",
                    "Access log lines written.",
                    &self.written,
                ),
                (
                    "weft_access_log_lines_dropped",
                    "Access log lines dropped: queue full or target not writable.",
                    &self.dropped,
                ),
            ],
        )
    }
}
