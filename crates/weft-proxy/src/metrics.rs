//! The proxy's metrics: one prometheus-client `Registry` served at the
//! admin server's `/metrics` in the OpenMetrics text format.
//!
//! * `traffic` — requests and TCP connections per edge, recorded by the
//!   `MetricsSink` without locks (`weft_requests_total`,
//!   `weft_request_duration_seconds`, `weft_tcp_*`);
//! * the counters the proxy's parts keep on its `Identity` (mTLS,
//!   authorization, policy events, transparent proxying), written by a
//!   collector on each scrape (`collect`);
//! * the agent's `weft_control_plane_connected` and `weft_config_version`;
//! * `report` — the same traffic counters as a `StatsReport` for the
//!   control plane (`weft stat`).

pub mod collect;
pub mod encode;
pub mod histogram;
pub mod labels;
pub mod report;
pub mod sink;
pub mod traffic;

use std::{sync::Arc, time::Instant};

use prometheus_client::{metrics::gauge::Gauge, registry::Registry};

use self::{encode::FnCollector, traffic::Traffic};
use crate::tls::Identity;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One per proxy process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    traffic: Arc<Traffic>,
    /// The origin of the reports' clock.
    started: Instant,
    /// 1 while the stream to the control plane is up.
    pub control_plane_connected: Gauge,
    /// The version of the config being run (0 before the first).
    pub config_version: Gauge,
}

impl Metrics {
    pub fn new(identity: &Arc<Identity>) -> Self {
        let mut registry = Registry::default();
        let traffic = Arc::new(Traffic::default());
        let control_plane_connected = Gauge::default();
        let config_version = Gauge::default();
        registry.register(
            "weft_control_plane_connected",
            "1 while the proxy's stream to the control plane is up, else 0",
            control_plane_connected.clone(),
        );
        registry.register(
            "weft_config_version",
            "The version of the config the proxy runs (0 before the first)",
            config_version.clone(),
        );
        let t = traffic.clone();
        registry.register_collector(FnCollector::boxed("traffic", move |e| {
            collect::traffic(&t, e)
        }));
        let id = identity.clone();
        registry.register_collector(FnCollector::boxed("identity", move |e| {
            collect::identity(&id, e)
        }));
        Self {
            registry,
            traffic,
            started: Instant::now(),
            control_plane_connected,
            config_version,
        }
    }

    #[cfg(test)]
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// Feeds the traffic counters from `identity`'s observer.
    pub fn install(&self, identity: &Identity) {
        let sink = Arc::new(sink::MetricsSink(self.traffic.clone()));
        identity.observer().install("metrics", Some(sink));
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a collector that failed would
        // have left a partial line, which is still better than nothing.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        text
    }

    /// The traffic counted so far, for the control plane.
    pub fn report(&self) -> weft_api::proto::StatsReport {
        report::build(&self.traffic, self.started)
    }

    /// Sets the config version gauge.
    pub fn set_config_version(&self, version: u64) {
        self.config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests;
