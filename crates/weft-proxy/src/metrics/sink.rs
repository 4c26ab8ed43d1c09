//! The metrics sink: turns the observer's records into the per-edge
//! traffic counters, without locks on the request path (see `traffic`).

use std::sync::Arc;

use super::traffic::{ConnectionLabels, RequestLabels, Traffic};
use crate::observe::{ConnectionRecord, Edge, RequestRecord, Sink};

/// Installed in the observer's `"metrics"` slot at start.
#[derive(Debug)]
pub struct MetricsSink(pub Arc<Traffic>);

fn request_labels(edge: &Edge) -> RequestLabels<'_> {
    [
        edge.direction.as_str(),
        &edge.source_service,
        &edge.destination_service,
        &edge.route,
    ]
}

fn connection_labels(edge: &Edge) -> ConnectionLabels<'_> {
    [
        edge.direction.as_str(),
        &edge.source_service,
        &edge.destination_service,
    ]
}

impl Sink for MetricsSink {
    fn request(&self, record: &RequestRecord) {
        self.0
            .request(request_labels(&record.edge), record.status, record.duration);
    }

    fn connection_opened(&self, conn: &ConnectionRecord) {
        self.0.connection_opened(connection_labels(&conn.edge));
    }

    fn connection_closed(&self, conn: &ConnectionRecord) {
        self.0
            .connection_closed(connection_labels(&conn.edge), conn.bytes_in, conn.bytes_out);
    }
}
