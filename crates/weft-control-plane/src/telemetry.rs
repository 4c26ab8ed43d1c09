//! The control plane's own metrics and the proxies' traffic reports.
//!
//! * `weft_cp_config_push_seconds` — from a config handed to a proxy's
//!   stream to its ACK (or NACK), observed by `Sessions`;
//! * `weft_cp_certificates_issued_total`, `weft_cp_certificate_failures_total`
//!   — `IssueCertificate` outcomes;
//! * `weft_cp_resources{kind}` and `weft_cp_connected_proxies{mesh}` —
//!   read from the store and the sessions at each scrape (`api/metrics.rs`);
//! * `reports` — each connected proxy's last two `StatsReport`s, and
//!   `aggregate`, which turns them into `weft stat`'s numbers.

pub mod aggregate;
pub mod reports;

use prometheus_client::{
    metrics::{
        counter::Counter,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use self::reports::Reports;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One per control plane, shared through `Sessions`.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    pub push_seconds: Histogram,
    pub certificates_issued: Counter,
    pub certificate_failures: Counter,
    pub reports: Reports,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::default();
        // 1 ms to about 16 s: a loopback ACK to a proxy stuck on a bind retry.
        let push_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let certificates_issued = Counter::default();
        let certificate_failures = Counter::default();
        registry.register(
            "weft_cp_config_push_seconds",
            "From a config handed to a proxy's stream until the proxy acknowledged or rejected it",
            push_seconds.clone(),
        );
        registry.register(
            "weft_cp_certificates_issued",
            "Workload certificates signed",
            certificates_issued.clone(),
        );
        registry.register(
            "weft_cp_certificate_failures",
            "Certificate requests refused or failed",
            certificate_failures.clone(),
        );
        Self {
            registry,
            push_seconds,
            certificates_issued,
            certificate_failures,
            reports: Reports::default(),
        }
    }
}

impl Telemetry {
    /// The metrics kept here, then `scraped` (values read for this scrape),
    /// as one OpenMetrics exposition.
    pub fn encode(&self, scraped: &Registry) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, scraped))
            .and_then(|()| encode_eof(&mut text));
        text
    }
}
