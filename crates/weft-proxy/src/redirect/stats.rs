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
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use super::detect::Detected;

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

    /// The counters in the Prometheus text format (nothing before the
    /// first captured connection or DNS query).
    pub fn render(&self, text: &mut String) {
        let dns = [
            ("local", &self.dns.local),
            ("forwarded", &self.dns.forwarded),
            ("failed", &self.dns.failed),
        ];
        if dns.iter().any(|(_, c)| c.load(Ordering::Relaxed) > 0) {
            let name = "weft_dns_queries_total";
            let _ = write!(
                text,
                "# HELP {name} Queries the mesh DNS server answered, by where the answer came from.\n# TYPE {name} counter\n"
            );
            for (answer, counter) in dns {
                let n = counter.load(Ordering::Relaxed);
                let _ = writeln!(text, "{name}{{answer=\"{answer}\"}} {n}");
            }
        }
        let map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return;
        }
        let name = "weft_redirect_connections_total";
        let _ = write!(
            text,
            "# HELP {name} Connections captured by the transparent-proxy rules, by what became of them.\n# TYPE {name} counter\n"
        );
        for ((direction, outcome, protocol), n) in map.iter() {
            let _ = writeln!(
                text,
                "{name}{{direction=\"{direction}\",outcome=\"{outcome}\",protocol=\"{protocol}\"}} {n}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_by_labels() {
        let stats = RedirectStats::default();
        let mut text = String::new();
        stats.render(&mut text);
        assert!(text.is_empty());
        stats.count("outbound", "mesh", Some(Detected::Http1));
        stats.count("outbound", "mesh", Some(Detected::Http1));
        stats.count("inbound", "passthrough", None);
        stats.render(&mut text);
        assert!(text.contains(
            "weft_redirect_connections_total{direction=\"outbound\",outcome=\"mesh\",protocol=\"http1\"} 2\n"
        ));
        assert!(text.contains(
            "weft_redirect_connections_total{direction=\"inbound\",outcome=\"passthrough\",protocol=\"undetected\"} 1\n"
        ));
    }
}
