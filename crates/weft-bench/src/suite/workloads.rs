//! The workloads of a run and which client drives each.

use crate::clients::Load;

/// Which of a topology's ways in a workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Http,
    H2,
    Grpc,
    Tcp,
}

/// Which client drives a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// oha: small `GET /` (HTTP/2 prior knowledge if `http2`).
    Oha { http2: bool },
    /// oha: `POST /echo` with a 1 MiB body, answered with the same 1 MiB.
    OhaBody,
    /// `weft-bench load grpc`.
    Grpc,
    /// `weft-bench load churn`.
    Churn,
    /// `weft-bench load stream`.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    pub id: &'static str,
    pub title: &'static str,
    pub lane: Lane,
    pub client: Client,
    pub load: Load,
    /// `req/s`, `conn/s` or `MB/s`.
    pub unit: &'static str,
}

/// Size of the body workload's request and response bodies.
pub const BODY_BYTES: usize = 1 << 20;

const fn w(
    id: &'static str,
    title: &'static str,
    lane: Lane,
    client: Client,
    load: Load,
    unit: &'static str,
) -> Workload {
    Workload {
        id,
        title,
        lane,
        client,
        load,
        unit,
    }
}

const HTTP1: Client = Client::Oha { http2: false };
const HTTP2: Client = Client::Oha { http2: true };

/// Every workload, in report order.
pub const ALL: [Workload; 10] = [
    w(
        "http1-1k",
        "HTTP/1.1 keep-alive, small response, open loop 1,000 req/s",
        Lane::Http,
        HTTP1,
        Load::Open(1_000.0),
        "req/s",
    ),
    w(
        "http1-5k",
        "HTTP/1.1 keep-alive, small response, open loop 5,000 req/s",
        Lane::Http,
        HTTP1,
        Load::Open(5_000.0),
        "req/s",
    ),
    w(
        "http1-max",
        "HTTP/1.1 keep-alive, small response, closed loop (64 connections)",
        Lane::Http,
        HTTP1,
        Load::Closed(64),
        "req/s",
    ),
    w(
        "h2-1k",
        "HTTP/2, small response, open loop 1,000 req/s",
        Lane::H2,
        HTTP2,
        Load::Open(1_000.0),
        "req/s",
    ),
    w(
        "h2-max",
        "HTTP/2, small response, closed loop (4 connections x 16 streams)",
        Lane::H2,
        HTTP2,
        Load::Closed(64),
        "req/s",
    ),
    w(
        "grpc-1k",
        "gRPC unary, open loop 1,000 req/s",
        Lane::Grpc,
        Client::Grpc,
        Load::Open(1_000.0),
        "req/s",
    ),
    w(
        "grpc-max",
        "gRPC unary, closed loop (64 in flight over 4 connections)",
        Lane::Grpc,
        Client::Grpc,
        Load::Closed(64),
        "req/s",
    ),
    w(
        "body-1mib",
        "1 MiB request and 1 MiB response body, closed loop (4 connections)",
        Lane::Http,
        Client::OhaBody,
        Load::Closed(4),
        "req/s",
    ),
    w(
        "tcp-stream",
        "Opaque TCP stream, one connection, throughput",
        Lane::Tcp,
        Client::Stream,
        Load::Closed(1),
        "MB/s",
    ),
    w(
        "churn",
        "New connection per request (HTTP/1.1, Connection: close), closed loop (16)",
        Lane::Http,
        Client::Churn,
        Load::Closed(16),
        "conn/s",
    ),
];

/// The quick mode's subset.
pub const QUICK: [&str; 8] = [
    "http1-1k",
    "http1-5k",
    "http1-max",
    "h2-1k",
    "grpc-1k",
    "body-1mib",
    "tcp-stream",
    "churn",
];

pub fn plan(quick: bool) -> Vec<Workload> {
    ALL.into_iter()
        .filter(|w| !quick || QUICK.contains(&w.id))
        .collect()
}

pub fn find(id: &str) -> Option<Workload> {
    ALL.into_iter().find(|w| w.id == id)
}

/// How the load reads in the report.
pub fn describe(load: Load) -> String {
    match load {
        Load::Open(rate) => format!("open {rate:.0}/s"),
        Load::Closed(n) => format!("closed {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_a_subset_and_ids_are_unique() {
        for id in QUICK {
            assert!(find(id).is_some(), "{id}");
        }
        let mut ids: Vec<_> = ALL.iter().map(|w| w.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        assert_eq!(plan(true).len(), QUICK.len());
        assert_eq!(plan(false).len(), ALL.len());
        assert_eq!(describe(Load::Open(1000.0)), "open 1000/s");
    }
}
