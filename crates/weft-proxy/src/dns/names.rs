//! The answers the proxy gives itself: `<service>.<suffix>` is the
//! service's virtual IP; any other name under the suffix does not exist;
//! every other question is for the host's resolver. Pure: bytes in, bytes
//! (or "forward") out.

use std::{collections::HashMap, net::Ipv4Addr};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{RData, Record, RecordType, rdata::A},
};

use crate::config::TransparentConfig;

/// How long resolvers may cache a mesh name: virtual IPs are stable, but
/// a service removed from the mesh should stop resolving soon.
pub const TTL_SECONDS: u32 = 30;

/// The mesh's names of one config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Lowercase, no dots at either end.
    suffix: String,
    by_service: HashMap<String, Ipv4Addr>,
}

/// What to do with one DNS message.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Our own answer, ready to send.
    Local(Vec<u8>),
    /// Not a mesh name: ask the host's resolver.
    Forward,
    /// Not even a DNS header: nothing to answer.
    Drop,
}

impl Names {
    pub fn new(config: &TransparentConfig) -> Self {
        let by_service = config
            .services
            .iter()
            .filter_map(|s| match s.virtual_ip {
                Some(std::net::IpAddr::V4(ip)) => Some((s.name.to_ascii_lowercase(), ip)),
                _ => None,
            })
            .collect();
        Self {
            suffix: config.dns_suffix.clone(),
            by_service,
        }
    }

    /// The reply to `query`, one DNS message.
    pub fn reply(&self, query: &[u8]) -> Reply {
        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(_) => return self.format_error(query),
        };
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            return Reply::Forward;
        }
        let [question] = request.queries.as_slice() else {
            return Reply::Forward;
        };
        let name = question
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Some(service) = self.within_suffix(&name) else {
            return Reply::Forward;
        };
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        if request.edns.is_some() {
            response.set_edns(Edns::new());
        }
        response.add_query(question.clone());
        match service.and_then(|s| self.by_service.get(s)) {
            Some(ip) => {
                // Only A records exist; other types get an empty answer
                // (the name exists), so clients do not wait for AAAA.
                if question.query_type() == RecordType::A {
                    response.add_answer(a_record(question, *ip));
                }
            }
            // The suffix itself exists (without records); deeper or unknown
            // names do not.
            None if service.is_none() => {}
            None => response.metadata.response_code = ResponseCode::NXDomain,
        }
        match response.to_vec() {
            Ok(bytes) => Reply::Local(bytes),
            Err(_) => Reply::Drop,
        }
    }

    /// `None`: outside the suffix. `Some(None)`: the suffix itself.
    /// `Some(Some(label))`: one label under it (which may be no service).
    /// A deeper name yields `Some(Some(""))`, which no service has.
    fn within_suffix<'a>(&self, name: &'a str) -> Option<Option<&'a str>> {
        if self.suffix.is_empty() {
            return None;
        }
        if name == self.suffix {
            return Some(None);
        }
        let head = name.strip_suffix(&self.suffix)?.strip_suffix('.')?;
        Some(Some(if head.contains('.') { "" } else { head }))
    }

    /// A FORMERR for a message we cannot parse, if it has an ID to answer to.
    fn format_error(&self, query: &[u8]) -> Reply {
        let Some(id) = query.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return Reply::Drop;
        };
        match Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec() {
            Ok(bytes) => Reply::Local(bytes),
            Err(_) => Reply::Drop,
        }
    }
}

fn a_record(question: &Query, ip: Ipv4Addr) -> Record {
    Record::from_rdata(question.name().clone(), TTL_SECONDS, RData::A(A(ip)))
}

#[cfg(test)]
mod tests;
