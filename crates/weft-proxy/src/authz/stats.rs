//! The authorization state every inbound of the proxy shares, kept by its
//! `Identity`: the counters for `/metrics` and the JWKS caches by URL.
//!
//! * `weft_authz_denied_total{direction, service, reason}`: denials per
//!   destination service and reason;
//! * `weft_authz_jwks_fetches_total{url}` and
//!   `weft_authz_jwks_fetch_failures_total{url}`: JWKS downloads.
//!
//! Only denials and fetches take a lock, and the label values are bounded
//! (this proxy's services × a few reasons; the configured JWKS URLs).

use std::{collections::BTreeMap, fmt, sync::Mutex};

use prometheus_client::encoding::DescriptorEncoder;

use super::jwks::JwksRegistry;
use crate::metrics::encode;

#[derive(Debug, Default)]
pub struct AuthzStats {
    denied: Mutex<BTreeMap<(String, &'static str), u64>>,
    jwks: JwksRegistry,
}

impl AuthzStats {
    pub fn count_denial(&self, service: &str, reason: &'static str) {
        // A poisoned lock only means a panic mid-increment; the map is fine.
        let mut denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        *denied.entry((service.to_owned(), reason)).or_default() += 1;
    }

    /// The JWKS caches shared by the proxy's inbounds.
    pub fn jwks(&self) -> &JwksRegistry {
        &self.jwks
    }

    /// Writes the counters to `/metrics`.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        encode::counters(
            encoder,
            "weft_authz_denied",
            "Requests and connections denied by TrafficPermissions.",
            denied.iter().map(|((service, reason), n)| {
                (
                    [
                        ("direction", "inbound"),
                        ("service", service.as_str()),
                        ("reason", *reason),
                    ],
                    *n,
                )
            }),
        )?;
        drop(denied);
        self.jwks.counts().encode(encoder)
    }
}

/// JWKS fetches and failures per URL.
#[derive(Debug, Default)]
pub struct FetchCounts {
    by_url: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl FetchCounts {
    pub fn record(&self, url: &str, ok: bool) {
        let mut by_url = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        let (fetches, failures) = by_url.entry(url.to_owned()).or_default();
        *fetches += 1;
        if !ok {
            *failures += 1;
        }
    }

    /// `(fetches, failures)` of `url`.
    #[cfg(test)]
    pub fn get(&self, url: &str) -> (u64, u64) {
        let by_url = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        by_url.get(url).copied().unwrap_or_default()
    }

    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let by_url = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        encode::counters(
            encoder,
            "weft_authz_jwks_fetches",
            "JWKS fetches from URLs.",
            by_url
                .iter()
                .map(|(url, (n, _))| ([("url", url.as_str())], *n)),
        )?;
        encode::counters(
            encoder,
            "weft_authz_jwks_fetch_failures",
            "JWKS fetches from URLs that failed.",
            by_url
                .iter()
                .map(|(url, (_, n))| ([("url", url.as_str())], *n)),
        )
    }
}
