//! Which requests are logged where: the outbounds and inbounds with an
//! AccessLog, by service (the records name their edge's services).

use std::collections::HashMap;

use super::{LogWriter, line};
use crate::observe::{ConnectionRecord, Direction, Edge, RequestRecord, Sink};

/// An inbound's ranked AccessLogs: the first whose `from` matches the
/// caller decides.
#[derive(Debug, Clone)]
pub struct InboundRule {
    pub from_service: Option<String>,
    pub writer: LogWriter,
}

#[derive(Debug, Default)]
pub struct AccessLogSink {
    /// By the outbound's (destination) service.
    pub outbound: HashMap<String, LogWriter>,
    /// By the inbound's (local) service.
    pub inbound: HashMap<String, Vec<InboundRule>>,
}

impl AccessLogSink {
    pub fn is_empty(&self) -> bool {
        self.outbound.is_empty() && self.inbound.is_empty()
    }

    fn writer(&self, edge: &Edge) -> Option<&LogWriter> {
        let service: &str = &edge.destination_service;
        match edge.direction {
            Direction::Outbound => self.outbound.get(service),
            Direction::Inbound => self
                .inbound
                .get(service)?
                .iter()
                .find(|rule| {
                    rule.from_service
                        .as_deref()
                        .is_none_or(|from| from == &*edge.source_service)
                })
                .map(|rule| &rule.writer),
        }
    }
}

impl Sink for AccessLogSink {
    fn request(&self, record: &RequestRecord) {
        if let Some(writer) = self.writer(&record.edge) {
            writer.push(line::request(record));
        }
    }

    fn connection_closed(&self, conn: &ConnectionRecord) {
        if let Some(writer) = self.writer(&conn.edge) {
            writer.push(line::connection(conn));
        }
    }
}
