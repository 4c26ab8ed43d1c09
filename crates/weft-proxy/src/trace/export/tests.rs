//! The exporter against real local HTTP servers: batches arrive decoded,
//! a dead or silent collector only costs counted drops.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{Router, body::Bytes, routing::post};
use prost::Message;
use tokio::net::TcpListener;

use super::*;
use crate::trace::span::{SpanKind, Value};

fn span(n: u8) -> SpanData {
    SpanData {
        trace_id: [7; 16],
        span_id: [n; 8],
        parent_span_id: Some([9; 8]),
        name: "GET /x".into(),
        kind: SpanKind::Client,
        start: SystemTime::now(),
        duration: Duration::from_millis(3),
        local_service: "web".into(),
        remote_service: "backend".into(),
        remote_address: Some(SocketAddr::from(([10, 0, 0, 2], 20001))),
        error: n == 2,
        attributes: vec![("http.response.status_code", Value::Int(200))],
        tags: Arc::new(vec![("team".into(), "a".into())]),
    }
}

fn settings(format: Format, addr: SocketAddr, path: &str) -> ExportSettings {
    ExportSettings {
        format,
        uri: format!("http://{addr}{path}").parse().unwrap(),
        max_queue_spans: 16,
        max_batch_spans: 4,
        flush_interval: Duration::from_millis(20),
        export_timeout: Duration::from_millis(300),
        resource: vec![("weft.mesh".into(), "default".into())],
    }
}

/// A collector that records each body it gets.
async fn collector(path: &'static str) -> (SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = Router::new().route(
        path,
        post(move |body: Bytes| async move {
            seen.lock().unwrap().push(body);
            ""
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, bodies)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn otlp_batches_reach_the_collector() {
    let (addr, bodies) = collector("/v1/traces").await;
    let stats = Arc::new(TraceStats::default());
    let exporter = SpanExporter::spawn(settings(Format::Otlp, addr, "/v1/traces"), stats.clone());
    for n in 1..=6 {
        exporter.push(span(n));
    }
    until("6 exported spans", || stats.exported_total() == 6).await;
    let bodies = bodies.lock().unwrap().clone();
    assert!(bodies.len() >= 2, "batches of at most 4: {}", bodies.len());
    let mut spans = Vec::new();
    for body in &bodies {
        let request = otlp::ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        let resource = request.resource_spans[0].resource.clone().unwrap();
        let attrs: Vec<(String, String)> = resource
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), kv.text()))
            .collect();
        assert!(attrs.contains(&("service.name".into(), "web".into())));
        assert!(attrs.contains(&("weft.mesh".into(), "default".into())));
        spans.extend(request.resource_spans[0].scope_spans[0].spans.clone());
    }
    assert_eq!(spans.len(), 6);
    let second = spans.iter().find(|s| s.span_id == vec![2; 8]).unwrap();
    assert_eq!(second.trace_id, vec![7; 16]);
    assert_eq!(second.parent_span_id, vec![9; 8]);
    assert_eq!(second.kind, otlp::SPAN_KIND_CLIENT);
    assert_eq!(
        second.status.as_ref().unwrap().code,
        otlp::STATUS_CODE_ERROR
    );
    assert!(second.end_time_unix_nano - second.start_time_unix_nano == 3_000_000);
    let attrs: Vec<(String, String)> = second
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.text()))
        .collect();
    assert!(attrs.contains(&("http.response.status_code".into(), "200".into())));
    assert!(attrs.contains(&("team".into(), "a".into())));
    assert_eq!(stats.dropped_total(), 0);
}

#[tokio::test]
async fn zipkin_json_has_the_v2_shape() {
    let (addr, bodies) = collector("/api/v2/spans").await;
    let stats = Arc::new(TraceStats::default());
    let exporter = SpanExporter::spawn(
        settings(Format::Zipkin, addr, "/api/v2/spans"),
        stats.clone(),
    );
    exporter.push(span(2));
    until("1 exported span", || stats.exported_total() == 1).await;
    let body = bodies.lock().unwrap()[0].clone();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let s = &json[0];
    assert_eq!(s["traceId"], "07".repeat(16));
    assert_eq!(s["id"], "02".repeat(8));
    assert_eq!(s["parentId"], "09".repeat(8));
    assert_eq!(s["kind"], "CLIENT");
    assert_eq!(s["duration"], 3000);
    assert_eq!(s["localEndpoint"]["serviceName"], "web");
    assert_eq!(s["remoteEndpoint"]["serviceName"], "backend");
    assert_eq!(s["remoteEndpoint"]["ipv4"], "10.0.0.2");
    assert_eq!(s["remoteEndpoint"]["port"], 20001);
    assert_eq!(s["tags"]["http.response.status_code"], "200");
    assert_eq!(s["tags"]["team"], "a");
    assert_eq!(s["tags"]["error"], "true");
}

#[tokio::test]
async fn a_dead_collector_costs_counted_drops() {
    // Bound then closed: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let stats = Arc::new(TraceStats::default());
    let exporter = SpanExporter::spawn(settings(Format::Otlp, addr, "/v1/traces"), stats.clone());
    for n in 1..=3 {
        exporter.push(span(n));
    }
    until("3 dropped spans", || stats.dropped_total() == 3).await;
    assert_eq!(stats.exported_total(), 0);
}

#[tokio::test]
async fn a_silent_collector_times_out_and_a_full_queue_drops() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let stats = Arc::new(TraceStats::default());
    let exporter = SpanExporter::spawn(settings(Format::Otlp, addr, "/v1/traces"), stats.clone());
    // The queue holds 16 and the first batch is stuck: pushing 40 at once
    // must drop some right away, without waiting.
    let started = std::time::Instant::now();
    for n in 0..40 {
        exporter.push(span(n));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "push never waits"
    );
    assert!(
        stats.dropped_total() >= 20,
        "dropped {}",
        stats.dropped_total()
    );
    // Every span is eventually accounted as dropped (timed-out batches too).
    until("all 40 dropped", || stats.dropped_total() == 40).await;
}
