//! Applies a config's Tracing and AccessLog settings to the proxy's
//! observer: installs the tracer and the span sink, and the access log
//! sink with one writer per target. Called by the agent after the
//! listeners took a config; the only writer of these observer slots.
//!
//! Unchanged settings keep their exporter and writers, so a config push
//! for something else loses no queued span or line.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    access_log::{AccessLogSink, LogWriter, sink::InboundRule},
    config::{Config, LogTarget, TracingBackend, TracingConfig},
    observe::Sink,
    tls::Identity,
    trace::{
        HeaderTracer, SpanSink,
        export::{ExportSettings, Format, SpanExporter},
    },
};

/// Observer slot names.
const SPANS: &str = "spans";
const ACCESS_LOG: &str = "access-log";

/// What is installed now.
#[derive(Debug)]
pub struct Telemetry {
    identity: Arc<Identity>,
    tracing: Option<TracingConfig>,
    writers: BTreeMap<LogTarget, LogWriter>,
}

impl Telemetry {
    pub fn new(identity: Arc<Identity>) -> Self {
        Self {
            identity,
            tracing: None,
            writers: BTreeMap::new(),
        }
    }

    /// Makes `config`'s settings current. Needs a Tokio runtime (spawns
    /// the exporter and writer tasks).
    pub fn apply(&mut self, config: &Config) {
        if config.tracing != self.tracing {
            self.apply_tracing(config);
        }
        self.apply_access_logs(config);
    }

    fn apply_tracing(&mut self, config: &Config) {
        let observer = self.identity.observer();
        self.tracing = config.tracing.clone();
        let Some(tracing) = &config.tracing else {
            observer.set_tracer(None);
            observer.install(SPANS, None);
            return;
        };
        let settings = ExportSettings {
            format: match tracing.backend {
                TracingBackend::Otlp => Format::Otlp,
                TracingBackend::Zipkin => Format::Zipkin,
            },
            uri: tracing.url.clone(),
            max_queue_spans: tracing.max_queue_spans as usize,
            max_batch_spans: tracing.max_batch_spans as usize,
            flush_interval: tracing.flush_interval,
            export_timeout: tracing.export_timeout,
            resource: vec![
                ("weft.mesh".into(), config.mesh.clone()),
                ("weft.dataplane".into(), config.dataplane.clone()),
            ],
        };
        let sink = SpanSink {
            exporter: SpanExporter::spawn(settings, self.identity.trace_stats().clone()),
            tags: Arc::new(tracing.tags.clone().into_iter().collect()),
            fallback_service: Arc::from(config.dataplane.as_str()),
        };
        // The sink first: a request traced by the new tracer should find it.
        observer.install(SPANS, Some(Arc::new(sink) as Arc<dyn Sink>));
        observer.set_tracer(Some(Arc::new(HeaderTracer {
            sampling_ppm: tracing.sampling_ppm,
        })));
    }

    fn apply_access_logs(&mut self, config: &Config) {
        let mut old = std::mem::take(&mut self.writers);
        let stats = self.identity.access_log_stats().clone();
        let mut writer = |target: &LogTarget| -> LogWriter {
            let w = old
                .remove(target)
                .or_else(|| self.writers.get(target).cloned())
                .unwrap_or_else(|| LogWriter::spawn(target, stats.clone()));
            self.writers.insert(target.clone(), w.clone());
            w
        };
        let mut sink = AccessLogSink::default();
        for outbound in &config.outbounds {
            if let Some(log) = &outbound.access_log {
                sink.outbound
                    .insert(outbound.service.clone(), writer(&log.target));
            }
        }
        for inbound in &config.inbounds {
            let rules: Vec<InboundRule> = inbound
                .access_logs
                .iter()
                .map(|log| InboundRule {
                    from_service: log.from_service.clone(),
                    writer: writer(&log.target),
                })
                .collect();
            if !rules.is_empty() {
                sink.inbound.insert(inbound.service.clone(), rules);
            }
        }
        let observer = self.identity.observer();
        if sink.is_empty() {
            observer.install(ACCESS_LOG, None);
        } else {
            observer.install(ACCESS_LOG, Some(Arc::new(sink) as Arc<dyn Sink>));
        }
        // Writers in `old` end once the replaced sink is gone.
    }
}
