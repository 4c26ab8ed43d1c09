//! The Tracing and AccessLog settings of a `ProxyConfig`, checked once.

use std::{collections::BTreeMap, time::Duration};

use http::Uri;
use serde::Serialize;
use weft_api::{ValidationErrors, policies::tracing::http_url_problem, proto};

/// The proxy's Tracing policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingConfig {
    pub name: String,
    pub backend: TracingBackend,
    #[serde(serialize_with = "serialize_uri")]
    pub url: Uri,
    /// Share of new traces recorded, per million.
    pub sampling_ppm: u32,
    pub tags: BTreeMap<String, String>,
    pub max_queue_spans: u32,
    pub max_batch_spans: u32,
    pub flush_interval: Duration,
    pub export_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TracingBackend {
    Otlp,
    Zipkin,
}

fn serialize_uri<S: serde::Serializer>(uri: &Uri, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(uri)
}

/// Where an AccessLog writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LogTarget {
    Path(String),
    Stdout,
}

/// An AccessLog of an outbound, or one of an inbound's ranked list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogConfig {
    pub name: String,
    /// Inbound only: the caller's service, `None` for anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_service: Option<String>,
    pub target: LogTarget,
}

pub fn parse_tracing(
    path: &str,
    msg: proto::TracingConfig,
    errors: &mut ValidationErrors,
) -> Option<TracingConfig> {
    let backend = match proto::TracingBackend::try_from(msg.backend) {
        Ok(proto::TracingBackend::Otlp) => Some(TracingBackend::Otlp),
        Ok(proto::TracingBackend::Zipkin) => Some(TracingBackend::Zipkin),
        Err(_) => {
            errors.push(
                format!("{path}.backend"),
                format!(
                    "{} is not a tracing backend (0 otlp, 1 zipkin)",
                    msg.backend
                ),
            );
            None
        }
    };
    let url = match http_url_problem(&msg.url) {
        Some(problem) => {
            errors.push(format!("{path}.url"), problem);
            None
        }
        None => match msg.url.parse::<Uri>() {
            Ok(uri) => Some(uri),
            Err(e) => {
                errors.push(format!("{path}.url"), format!("{:?}: {e}", msg.url));
                None
            }
        },
    };
    if msg.sampling_ppm > 1_000_000 {
        errors.push(
            format!("{path}.sampling_ppm"),
            format!("{} is more than a million", msg.sampling_ppm),
        );
    }
    for (field, value) in [
        ("max_queue_spans", msg.max_queue_spans),
        ("max_batch_spans", msg.max_batch_spans),
    ] {
        if value == 0 {
            errors.push(format!("{path}.{field}"), "must be at least 1");
        }
    }
    for (field, value) in [
        ("flush_interval_ms", msg.flush_interval_ms),
        ("export_timeout_ms", msg.export_timeout_ms),
    ] {
        if value == 0 {
            errors.push(format!("{path}.{field}"), "must be at least 1");
        }
    }
    Some(TracingConfig {
        name: msg.name,
        backend: backend?,
        url: url?,
        sampling_ppm: msg.sampling_ppm.min(1_000_000),
        tags: msg.tags.into_iter().collect(),
        max_queue_spans: msg.max_queue_spans,
        max_batch_spans: msg.max_batch_spans,
        flush_interval: Duration::from_millis(msg.flush_interval_ms),
        export_timeout: Duration::from_millis(msg.export_timeout_ms),
    })
}

pub fn parse_access_log(
    path: &str,
    msg: proto::AccessLogPolicy,
    errors: &mut ValidationErrors,
) -> Option<AccessLogConfig> {
    use proto::access_log_policy::Target;
    let target = match msg.target {
        Some(Target::Path(file)) if file.starts_with('/') && !file.contains('\0') => {
            LogTarget::Path(file)
        }
        Some(Target::Path(file)) => {
            errors.push(
                format!("{path}.path"),
                format!("{file:?} is not an absolute path"),
            );
            return None;
        }
        Some(Target::Stdout(true)) => LogTarget::Stdout,
        Some(Target::Stdout(false)) | None => {
            errors.push(format!("{path}.target"), "required (a path or stdout)");
            return None;
        }
    };
    Some(AccessLogConfig {
        name: msg.name,
        from_service: Some(msg.from_service).filter(|s| !s.is_empty()),
        target,
    })
}

#[cfg(test)]
mod tests;
