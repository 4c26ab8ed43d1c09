//! What the proxy's collectors write on each scrape: the per-edge traffic
//! counters, and the counters its parts keep on the `Identity` (mTLS,
//! authorization, policies, transparent proxying).

use std::{fmt, sync::atomic::Ordering, time::UNIX_EPOCH};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::MetricType,
};

use super::{
    encode,
    histogram::{BOUNDS_SECONDS, Snapshot},
    labels::{Key, Labels},
    traffic::Traffic,
};
use crate::tls::{Identity, stats::TlsStats};

/// `weft_requests_total`, `weft_request_duration_seconds` and the TCP families.
pub fn traffic(traffic: &Traffic, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let requests = traffic.requests.snapshot();
    let statuses = requests.iter().flat_map(|(key, c)| {
        let [direction, source, destination, route] = key.values();
        c.statuses().map(move |(code, n)| {
            let labels = [
                ("direction", direction.to_owned()),
                ("source_service", source.to_owned()),
                ("destination_service", destination.to_owned()),
                ("route", route.to_owned()),
                ("status_code", code.to_string()),
            ];
            (labels, n)
        })
    });
    encode::counters(
        encoder,
        "weft_requests",
        "HTTP requests, by edge, route and the status the client got.",
        statuses,
    )?;
    let mut family = encoder.encode_descriptor(
        "weft_request_duration_seconds",
        "HTTP request latency until the end of the response, by edge and route.",
        None,
        MetricType::Histogram,
    )?;
    for (key, counters) in requests.iter() {
        let [direction, source, destination, route] = key.values();
        let labels = [
            ("direction", direction),
            ("source_service", source),
            ("destination_service", destination),
            ("route", route),
        ];
        let metric = family.encode_family(&labels)?;
        histogram(&counters.latency.snapshot()).encode(metric)?;
    }

    let connections = traffic.connections.snapshot();
    let labels = |key: &Key<3>| {
        let [direction, source, destination] = key.values();
        [
            ("direction", direction.to_owned()),
            ("source_service", source.to_owned()),
            ("destination_service", destination.to_owned()),
        ]
    };
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    encode::counters(
        encoder,
        "weft_tcp_connections_opened",
        "TCP connections opened, by edge.",
        connections
            .iter()
            .map(|(k, c)| (labels(k), load(&c.opened))),
    )?;
    encode::counters(
        encoder,
        "weft_tcp_connections_closed",
        "TCP connections closed, by edge.",
        connections
            .iter()
            .map(|(k, c)| (labels(k), load(&c.closed))),
    )?;
    encode::gauges(
        encoder,
        "weft_tcp_connections_active",
        "TCP connections open now, by edge.",
        connections.iter().map(|(k, c)| {
            let active = load(&c.opened).saturating_sub(load(&c.closed));
            (labels(k), i64::try_from(active).unwrap_or(i64::MAX))
        }),
    )?;
    encode::counters(
        encoder,
        "weft_tcp_bytes",
        "Bytes through closed TCP connections, by edge; flow in is from the client.",
        connections.iter().flat_map(|(k, c)| {
            let [d, s, t] = labels(k);
            [
                (
                    [d.clone(), s.clone(), t.clone(), ("flow", "in".to_owned())],
                    load(&c.bytes_in),
                ),
                ([d, s, t, ("flow", "out".to_owned())], load(&c.bytes_out)),
            ]
        }),
    )
}

/// A histogram snapshot in the shape prometheus-client encodes.
struct HistogramSnapshot(f64, u64, Vec<(f64, u64)>);

impl fmt::Debug for HistogramSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HistogramSnapshot").field(&self.1).finish()
    }
}

impl EncodeMetric for HistogramSnapshot {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0, self.1, &self.2, None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn histogram(snapshot: &Snapshot) -> HistogramSnapshot {
    let bounds = BOUNDS_SECONDS.iter().copied().chain([f64::INFINITY]);
    HistogramSnapshot(
        snapshot.sum_seconds,
        snapshot.count(),
        bounds.zip(snapshot.buckets).collect(),
    )
}

/// The mTLS counters, the certificate's expiry, and the counters of
/// authorization, policies and transparent proxying.
pub fn identity(identity: &Identity, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let stats = identity.stats();
    let counters = [
        (
            "weft_tls_inbound_mtls_connections",
            "Inbound connections accepted with mTLS.",
            &stats.inbound_mtls,
        ),
        (
            "weft_tls_inbound_plaintext_connections",
            "Inbound connections served in plaintext.",
            &stats.inbound_plaintext,
        ),
        (
            "weft_tls_plaintext_refused",
            "Plaintext connections refused because mTLS is strict.",
            &stats.plaintext_refused,
        ),
        (
            "weft_tls_inbound_handshake_failures",
            "Inbound TLS handshakes that failed.",
            &stats.inbound_handshake_failures,
        ),
        (
            "weft_tls_outbound_handshake_failures",
            "Outbound TLS handshakes that failed.",
            &stats.outbound_handshake_failures,
        ),
        (
            "weft_tls_certificates_issued",
            "Workload certificates obtained.",
            &stats.certificates_issued,
        ),
        (
            "weft_tls_certificate_failures",
            "Workload certificate requests that failed.",
            &stats.certificate_failures,
        ),
    ];
    for (name, help, counter) in counters {
        encode::counter(encoder, name, help, TlsStats::get(counter))?;
    }
    if let Some(credentials) = identity.credentials() {
        let not_after = credentials
            .not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        encode::gauge(
            encoder,
            "weft_tls_certificate_expiry_timestamp_seconds",
            "When the workload certificate expires (UNIX time).",
            i64::try_from(not_after).unwrap_or(i64::MAX),
        )?;
    }
    identity.authz_stats().encode(encoder)?;
    identity.policy_stats().encode(encoder)?;
    identity.redirect_stats().encode(encoder)?;
    identity.trace_stats().encode(encoder)?;
    identity.access_log_stats().encode(encoder)
}
