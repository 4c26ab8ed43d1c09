//! Tracing and AccessLog resolution. A Tracing is a setting of the whole
//! proxy: the most specific one whose `to` selects any of the Dataplane's
//! inbounds (an empty `to` selects every proxy, also one without
//! inbounds). AccessLogs are resolved per edge: per outbound like the
//! traffic kinds, per inbound ranked like RateLimits, because only the
//! proxy knows the caller.

use std::collections::BTreeMap;

use weft_api::{
    Dataplane,
    dataplane::Inbound,
    policies::{AccessLog, Tracing, tracing::BackendKind},
    policy::precedence,
    proto,
};

use super::policies::{Pick, caller_sources, destination_tags, selecting_inbound};

/// The Tracing of `dataplane`, if one selects it.
pub fn tracing_for(tracings: &[Tracing], dataplane: &Dataplane) -> Option<proto::TracingConfig> {
    let no_inbound = BTreeMap::new();
    let own_tags = dataplane.networking.inbound.iter().map(|i| &i.tags).chain(
        dataplane
            .networking
            .inbound
            .is_empty()
            .then_some(&no_inbound),
    );
    let selects =
        |t: &Tracing, tags: &BTreeMap<String, String>| t.selector.matches(&BTreeMap::new(), tags);
    let winner = own_tags
        .flat_map(|tags| tracings.iter().filter(move |t| selects(t, tags)))
        .min_by(|a, b| precedence(a, b))?;
    Some(tracing_config(winner))
}

fn tracing_config(t: &Tracing) -> proto::TracingConfig {
    let s = &t.spec;
    proto::TracingConfig {
        name: t.name.clone(),
        backend: match s.backend.kind {
            BackendKind::Otlp => proto::TracingBackend::Otlp,
            BackendKind::Zipkin => proto::TracingBackend::Zipkin,
        }
        .into(),
        url: s.backend.url.clone(),
        sampling_ppm: s.sampling.ppm(),
        tags: s.tags.clone().into_iter().collect(),
        max_queue_spans: s.max_queue_spans,
        max_batch_spans: s.max_batch_spans,
        flush_interval_ms: s.flush_interval.as_millis(),
        export_timeout_ms: s.export_timeout.as_millis(),
    }
}

/// The AccessLog for `dataplane` calling `service`, picked like a Timeout.
pub fn access_log_for_outbound(
    logs: &[AccessLog],
    dataplane: &Dataplane,
    service: &str,
    mesh_dataplanes: &[Dataplane],
) -> Option<proto::AccessLogPolicy> {
    let sources = caller_sources(dataplane);
    let destination = destination_tags(service, mesh_dataplanes);
    let pick = Pick {
        sources: &sources,
        destination: &destination,
    };
    pick.one(logs).map(access_log)
}

/// The AccessLogs whose `to` selects `inbound`, most specific first.
pub fn access_logs_for_inbound(
    logs: &[AccessLog],
    inbound: &Inbound,
) -> Vec<proto::AccessLogPolicy> {
    selecting_inbound(logs, inbound)
        .into_iter()
        .map(access_log)
        .collect()
}

fn access_log(p: &AccessLog) -> proto::AccessLogPolicy {
    use proto::access_log_policy::Target;
    proto::AccessLogPolicy {
        name: p.name.clone(),
        from_service: p.selector.from_service().unwrap_or_default().to_owned(),
        target: Some(match &p.spec.path {
            Some(path) => Target::Path(path.clone()),
            None => Target::Stdout(true),
        }),
    }
}
