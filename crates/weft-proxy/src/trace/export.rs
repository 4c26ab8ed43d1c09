//! The span exporter: a bounded queue filled from the request path and a
//! task that sends batches to the collector, one at a time.
//!
//! When the queue is full the span is dropped and counted, so requests
//! never wait for the collector; a failed or timed-out batch is dropped
//! and counted too (no retries: a retry would only let the queue grow
//! behind a collector that is already struggling).

use std::{sync::Arc, time::Duration};

use http::Uri;
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    time::Instant,
};
use tracing::debug;

use super::{TraceStats, otlp, post::Poster, span::SpanData, zipkin};

/// The wire format of the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Otlp,
    Zipkin,
}

/// What the Tracing policy says about exporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    pub format: Format,
    pub uri: Uri,
    pub max_queue_spans: usize,
    pub max_batch_spans: usize,
    pub flush_interval: Duration,
    pub export_timeout: Duration,
    /// Resource attributes besides `service.name` (OTLP only).
    pub resource: Vec<(String, String)>,
}

/// The sending side; dropping every clone ends the task after it sent
/// what was queued.
#[derive(Debug, Clone)]
pub struct SpanExporter {
    queue: mpsc::Sender<SpanData>,
    stats: Arc<TraceStats>,
}

impl SpanExporter {
    /// Starts the export task on the current runtime.
    pub fn spawn(settings: ExportSettings, stats: Arc<TraceStats>) -> Self {
        let (queue, rx) = mpsc::channel(settings.max_queue_spans.max(1));
        tokio::spawn(run(rx, settings, stats.clone()));
        Self { queue, stats }
    }

    /// Queues a span without waiting; a full queue drops it.
    pub fn push(&self, span: SpanData) {
        match self.queue.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => self.stats.dropped(1),
        }
    }
}

async fn run(mut rx: mpsc::Receiver<SpanData>, settings: ExportSettings, stats: Arc<TraceStats>) {
    let content_type = match settings.format {
        Format::Otlp => "application/x-protobuf",
        Format::Zipkin => "application/json",
    };
    let poster = Poster::new(settings.uri.clone(), content_type, settings.export_timeout);
    let max_batch = settings.max_batch_spans.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        batch.push(first);
        let deadline = Instant::now() + settings.flush_interval;
        let mut closed = false;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        send(&poster, &settings, &stats, &batch).await;
        batch.clear();
        if closed {
            return;
        }
    }
}

async fn send(poster: &Poster, settings: &ExportSettings, stats: &TraceStats, batch: &[SpanData]) {
    let body = match settings.format {
        Format::Otlp => otlp::encode(batch, &settings.resource),
        Format::Zipkin => zipkin::encode(batch),
    };
    let count = batch.len() as u64;
    match poster.post(body).await {
        Ok(()) => stats.exported(count),
        Err(e) => {
            debug!(collector = %settings.uri, error = %e, spans = count, "span export failed");
            stats.export_failed();
            stats.dropped(count);
        }
    }
}

#[cfg(test)]
mod tests;
