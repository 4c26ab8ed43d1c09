//! The metrics sink: turns the observer's records into the per-edge
//! traffic counters, without locks on the request path (see `traffic`).

use std::sync::Arc;

use super::traffic::{ConnectionKey, RequestKey, Traffic};
use crate::observe::{ConnectionRecord, Edge, RequestRecord, Sink};

/// Installed in the observer's `"metrics"` slot at start.
#[derive(Debug)]
pub struct MetricsSink(pub Arc<Traffic>);

fn request_key(edge: &Edge) -> RequestKey {
    (
        edge.direction.as_str(),
        edge.source_service.clone(),
        edge.destination_service.clone(),
        edge.route.clone(),
    )
}

fn connection_key(edge: &Edge) -> ConnectionKey {
    (
        edge.direction.as_str(),
        edge.source_service.clone(),
        edge.destination_service.clone(),
    )
}

impl Sink for MetricsSink {
    fn request(&self, record: &RequestRecord) {
        self.0
            .request(&request_key(&record.edge), record.status, record.duration);
    }

    fn connection_opened(&self, conn: &ConnectionRecord) {
        self.0.connection_opened(&connection_key(&conn.edge));
    }

    fn connection_closed(&self, conn: &ConnectionRecord) {
        self.0
            .connection_closed(&connection_key(&conn.edge), conn.bytes_in, conn.bytes_out);
    }
}
