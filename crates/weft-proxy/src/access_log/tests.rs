//! Access log lines: the fields, the per-edge selection, and the writer
//! task appending to a real file.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use http::{HeaderValue, Method};

use super::{sink::InboundRule, *};
use crate::{
    config::LogTarget,
    observe::{ConnectionRecord, Direction, Edge, RequestRecord, Sink, TraceIds},
};

fn edge(direction: Direction, source: &str, destination: &str) -> Arc<Edge> {
    Arc::new(Edge {
        direction,
        source_service: source.into(),
        destination_service: destination.into(),
        route: "".into(),
    })
}

fn request(edge: Arc<Edge>, path: &str) -> RequestRecord {
    RequestRecord {
        edge,
        method: Method::POST,
        uri: format!("{path}?q=1").parse().unwrap(),
        host: Some(HeaderValue::from_static("backend:8080")),
        status: 201,
        start: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        head_latency: Duration::from_millis(1),
        duration: Duration::from_micros(2500),
        bytes_in: 5,
        bytes_out: 7,
        upstream: Some(SocketAddr::from(([127, 0, 0, 1], 20001))),
        trace: Some(TraceIds {
            trace_id: [0xab; 16],
            span_id: [0xcd; 8],
            parent_span_id: None,
            sampled: false,
        }),
        retries: 0,
    }
}

async fn lines(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    for _ in 0..500 {
        let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
        let lines: Vec<_> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= want {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {want} lines in {}", path.display());
}

fn temp_log(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-access-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("sub").join("access.jsonl")
}

#[tokio::test]
async fn selected_edges_are_written_as_json_lines() {
    let path = temp_log("edges");
    let stats = Arc::new(AccessLogStats::default());
    let writer = LogWriter::spawn(
        &LogTarget::Path(path.to_string_lossy().into_owned()),
        stats.clone(),
    );
    let mut sink = AccessLogSink::default();
    sink.outbound.insert("backend".into(), writer.clone());
    sink.inbound.insert(
        "web".into(),
        vec![InboundRule {
            from_service: Some("api".into()),
            writer: writer.clone(),
        }],
    );
    drop(writer);

    sink.request(&request(edge(Direction::Outbound, "web", "backend"), "/a"));
    // Not selected: another outbound, and an inbound caller other than api.
    sink.request(&request(edge(Direction::Outbound, "web", "store"), "/b"));
    sink.request(&request(edge(Direction::Inbound, "other", "web"), "/c"));
    sink.request(&request(edge(Direction::Inbound, "api", "web"), "/d"));
    sink.connection_closed(&ConnectionRecord {
        edge: edge(Direction::Outbound, "web", "backend"),
        peer: Some(SocketAddr::from(([127, 0, 0, 1], 5555))),
        upstream: Some(SocketAddr::from(([10, 0, 0, 2], 20002))),
        start: SystemTime::UNIX_EPOCH,
        duration: Duration::from_millis(40),
        bytes_in: 11,
        bytes_out: 13,
    });

    let lines = lines(&path, 3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["time"], "2023-11-14T22:13:20.123Z");
    assert_eq!(first["type"], "http");
    assert_eq!(first["direction"], "outbound");
    assert_eq!(first["sourceService"], "web");
    assert_eq!(first["destinationService"], "backend");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["authority"], "backend:8080");
    assert_eq!(first["path"], "/a");
    assert_eq!(first["status"], 201);
    assert_eq!(first["durationMs"], 2.5);
    assert_eq!(first["bytesIn"], 5);
    assert_eq!(first["bytesOut"], 7);
    assert_eq!(first["upstream"], "127.0.0.1:20001");
    assert_eq!(first["traceId"], "ab".repeat(16));
    assert_eq!(first["spanId"], "cd".repeat(8));
    assert_eq!(lines[1]["path"], "/d");
    assert_eq!(lines[1]["direction"], "inbound");
    let tcp = &lines[2];
    assert_eq!(tcp["type"], "tcp");
    assert_eq!(tcp["peer"], "127.0.0.1:5555");
    assert_eq!(tcp["upstream"], "10.0.0.2:20002");
    assert_eq!(tcp["durationMs"], 40.0);
    assert_eq!(
        (tcp["bytesIn"].as_u64(), tcp["bytesOut"].as_u64()),
        (Some(11), Some(13))
    );
    assert_eq!(stats.written_total(), 3);
    assert_eq!(stats.dropped_total(), 0);
}

#[tokio::test]
async fn an_unwritable_target_counts_drops() {
    // A directory where the file should be: it cannot be opened for append.
    let path = temp_log("unwritable");
    std::fs::create_dir_all(&path).unwrap();
    let stats = Arc::new(AccessLogStats::default());
    let writer = LogWriter::spawn(
        &LogTarget::Path(path.to_string_lossy().into_owned()),
        stats.clone(),
    );
    let line = super::line::request(&request(edge(Direction::Outbound, "web", "b"), "/"));
    writer.push(line.clone());
    writer.push(line);
    for _ in 0..500 {
        if stats.dropped_total() == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dropped {} lines, expected 2", stats.dropped_total());
}
