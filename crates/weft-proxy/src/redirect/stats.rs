//! What became of captured connections, for `/metrics`:
//! `weft_redirect_connections_total{direction, outcome, protocol}`.
//!
//! Outcomes: `mesh` (a mesh service's stack took it; `protocol` is what
//! detection saw, or `undetected` when it was skipped), `passthrough`,
//! `refused` (outside the mesh under `outsideMesh: refuse`), `not_http`
//! (TLS or other bytes for an HTTP service), `no_destination` (no original
//! destination, or the redirect port dialled directly). The label values
//! are fixed, so the map stays small; one uncontended lock per connection.
//!
//! And the mesh DNS server's `weft_dns_queries_total{answer}`: `local`
//! (a mesh name, or a refusal under the suffix), `forwarded`, `failed`
//! (no resolver answered).

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use prometheus_client::encoding::DescriptorEncoder;

use super::detect::Detected;
use crate::metrics::encode;

/// One set of labels.
type Labels = (&'static str, &'static str, &'static str);

#[derive(Debug, Default)]
pub struct RedirectStats {
    connections: Mutex<BTreeMap<Labels, u64>>,
    dns: Arc<DnsStats>,
}

/// DNS answers by where they came from.
#[derive(Debug, Default)]
pub struct DnsStats {
    pub local: AtomicU64,
    pub forwarded: AtomicU64,
    pub failed: AtomicU64,
}

impl DnsStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl RedirectStats {
    pub fn count(
        &self,
        direction: &'static str,
        outcome: &'static str,
        detected: Option<Detected>,
    ) {
        let protocol = match detected {
            None => "undetected",
            Some(Detected::Http1) => "http1",
            Some(Detected::Http2) => "http2",
            Some(Detected::Tls) => "tls",
            Some(Detected::Opaque) => "opaque",
            Some(Detected::Silent) => "silent",
            Some(Detected::Closed) => "closed",
        };
        // A poisoned lock only means a panic mid-increment; the map is fine.
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((direction, outcome, protocol)).or_default() += 1;
    }

    /// The DNS server's counters, shared with it.
    pub fn dns(&self) -> Arc<DnsStats> {
        self.dns.clone()
    }

    /// Writes the counters to `/metrics`.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let dns = [
            ("local", &self.dns.local),
            ("forwarded", &self.dns.forwarded),
            ("failed", &self.dns.failed),
        ];
        encode::counters(
            encoder,
            "weft_dns_queries",
            "Queries the mesh DNS server answered, by where the answer came from.",
            dns.map(|(answer, n)| ([("answer", answer)], n.load(Ordering::Relaxed))),
        )?;
        let map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        encode::counters(
            encoder,
            "weft_redirect_connections",
            "Connections captured by the transparent-proxy rules, by what became of them.",
            map.iter().map(|((direction, outcome, protocol), n)| {
                (
                    [
                        ("direction", *direction),
                        ("outcome", *outcome),
                        ("protocol", *protocol),
                    ],
                    *n,
                )
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_by_labels() {
        let stats = Arc::new(RedirectStats::default());
        stats.count("outbound", "mesh", Some(Detected::Http1));
        stats.count("outbound", "mesh", Some(Detected::Http1));
        stats.count("inbound", "passthrough", None);
        let shown = stats.clone();
        let text = encode::text_of(move |e| shown.encode(e));
        assert!(text.contains(
            "weft_redirect_connections_total{direction=\"outbound\",outcome=\"mesh\",protocol=\"http1\"} 2\n"
        ));
        assert!(text.contains(
            "weft_redirect_connections_total{direction=\"inbound\",outcome=\"passthrough\",protocol=\"undetected\"} 1\n"
        ));
    }
}
