//! `Tracing`: where the proxies a policy selects send their spans, how
//! many new traces they start, and extra attributes for every span.
//!
//! Tracing is a setting of a whole proxy, not of one edge: the control
//! plane picks, for each Dataplane, the most specific Tracing whose `to`
//! selects one of the Dataplane's inbounds (an empty `to` selects every
//! proxy). `from` cannot be used, because a proxy traces all its traffic
//! the same way whoever calls.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    ValidationErrors,
    duration::{Percent, PolicyDuration, check_range},
    name::tag_key_problem,
    policy::{Policy, PolicySpec},
};

pub type Tracing = Policy<TracingSpec>;

/// Spans waiting for export; more are dropped (and counted).
pub const DEFAULT_MAX_QUEUE_SPANS: u32 = 2048;
/// Spans in one export request.
pub const DEFAULT_MAX_BATCH_SPANS: u32 = 512;
/// How long a span may wait for a batch to fill.
pub const DEFAULT_FLUSH_INTERVAL: PolicyDuration = PolicyDuration::from_millis(1000);
/// How long one export request may take before it is given up.
pub const DEFAULT_EXPORT_TIMEOUT: PolicyDuration = PolicyDuration::from_millis(2000);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSpec {
    pub backend: TracingBackend,
    /// The share of new traces (requests that carry none) that are
    /// recorded; a request that carries a trace keeps its caller's
    /// decision. Default 100.
    #[serde(default = "full_sampling")]
    pub sampling: Percent,
    /// Extra attributes added to every span.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "default_max_queue")]
    pub max_queue_spans: u32,
    #[serde(default = "default_max_batch")]
    pub max_batch_spans: u32,
    #[serde(default = "default_flush_interval")]
    pub flush_interval: PolicyDuration,
    #[serde(default = "default_export_timeout")]
    pub export_timeout: PolicyDuration,
}

/// The collector spans are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingBackend {
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// The full `http://` URL of the collector's endpoint, e.g.
    /// `http://collector:4318/v1/traces` (OTLP) or
    /// `http://zipkin:9411/api/v2/spans` (Zipkin).
    pub url: String,
}

/// The wire format of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// OTLP over HTTP, protobuf body.
    Otlp,
    /// Zipkin v2 JSON.
    Zipkin,
}

fn full_sampling() -> Percent {
    Percent::from_ppm(Percent::MILLION)
}
fn default_max_queue() -> u32 {
    DEFAULT_MAX_QUEUE_SPANS
}
fn default_max_batch() -> u32 {
    DEFAULT_MAX_BATCH_SPANS
}
fn default_flush_interval() -> PolicyDuration {
    DEFAULT_FLUSH_INTERVAL
}
fn default_export_timeout() -> PolicyDuration {
    DEFAULT_EXPORT_TIMEOUT
}

impl PolicySpec for TracingSpec {
    fn validate(&self, errors: &mut ValidationErrors) {
        if let Some(problem) = http_url_problem(&self.backend.url) {
            errors.push("backend.url", problem);
        }
        for key in self.tags.keys() {
            if let Some(p) = tag_key_problem(key) {
                errors.push(format!("tags.{key}"), p);
            }
        }
        if !(1..=1_000_000).contains(&self.max_queue_spans) {
            errors.push("maxQueueSpans", "must be 1-1000000");
        }
        if self.max_batch_spans == 0 || self.max_batch_spans > self.max_queue_spans {
            errors.push(
                "maxBatchSpans",
                "must be at least 1 and at most maxQueueSpans",
            );
        }
        let (min, max) = (Duration::from_millis(1), Duration::from_secs(60));
        check_range(errors, "flushInterval", self.flush_interval, min, max);
        check_range(errors, "exportTimeout", self.export_timeout, min, max);
    }
}

/// Why `url` is not a plain `http://host[:port]/path` URL, if it is not.
/// Only plain HTTP is supported: collectors usually sit beside the proxy.
pub fn http_url_problem(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Some(format!("{url:?} must start with http://"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Some(format!("{url:?} has no valid host"));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Some(format!("{url:?} has an invalid port"));
    }
    None
}
