//! Distributed tracing and access logs with real parts: two Python services
//! instrumented with the official OpenTelemetry SDK call each other through
//! two Weft proxies, and a test collector (`otel/receiver.rs`) receives
//! the spans of both the SDK and the proxies over OTLP/HTTP. The trace must
//! be one, with exact parent/child links, and the access log lines must
//! carry its id. A dead or silent collector must fail no request; Zipkin
//! export is checked for the v2 JSON shape.
//!
//! Needs the Python venv made by `scripts/install-test-deps`; the tests
//! fail (not skip) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "otel/receiver.rs"]
mod receiver;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use receiver::{Received, Receiver, silent_collector};
use weft_proxy::trace::{context::hex, otlp};
use weft_testkit::{
    DataplaneSpec, Proxy, TestMesh, free_port,
    load::{burst, count},
    process::TestProcess,
    scenario::wait_for_config,
    servers::{http_get, http_get_with},
    wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");
const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
/// The span of the test client that sends the traced request.
const CLIENT_SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

/// The venv's Python with the OpenTelemetry SDK and OTLP exporter.
fn python() -> PathBuf {
    let venv = std::env::var_os("WEFT_OTEL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/otel-venv"));
    let python = venv.join("bin/python");
    let usable = std::process::Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        usable,
        "no Python venv with opentelemetry-sdk at {}: run scripts/install-test-deps",
        venv.display()
    );
    python
}

/// Starts `otel/service.py` as app `name` on `port`.
fn start_app(
    mesh: &TestMesh,
    name: &str,
    port: u16,
    otlp_url: &str,
    downstream: Option<String>,
) -> TestProcess {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel/service.py");
    let mut args = vec![
        script.display().to_string(),
        name.to_owned(),
        port.to_string(),
        otlp_url.to_owned(),
    ];
    if let Some(url) = downstream {
        args.extend(["--downstream".to_owned(), url]);
    }
    TestProcess::spawn(&python(), &format!("app-{name}"), &args, &mesh.dir, &[]).unwrap()
}

fn traceparent() -> (&'static str, String) {
    (
        "traceparent",
        format!("00-{}-{}-01", hex(&TRACE), hex(&CLIENT_SPAN)),
    )
}

/// The one span of `service` with `kind` in `spans`.
fn one<'a>(spans: &'a [Received], service: &str, kind: i32) -> &'a otlp::Span {
    let found: Vec<_> = spans
        .iter()
        .filter(|r| r.service == service && r.span.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "{service} kind {kind} in {spans:#?}");
    &found[0].span
}

fn attribute(span: &otlp::Span, key: &str) -> String {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.text())
        .unwrap_or_default()
}

async fn wait_config(proxies: &[&Proxy], needle: &str) {
    for proxy in proxies {
        wait_for_config(proxy, needle, true).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_and_proxies_form_one_trace_and_access_logs_carry_its_id() {
    let collector = Receiver::start().await;
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let (app_a_port, app_b_port) = (free_port(), free_port());
    let proxy_b = mesh
        .proxy(&cp, &DataplaneSpec::new("b-1", "b", "http", app_b_port))
        .await
        .unwrap();
    let mut spec_a = DataplaneSpec::new("a-1", "a", "http", app_a_port);
    let to_b = spec_a.outbound("b");
    let proxy_a = mesh.proxy(&cp, &spec_a).await.unwrap();

    let log = mesh.dir.join("logs/access.jsonl");
    mesh.apply_ok(
        &cp,
        &format!(
            "type: Tracing\nmesh: default\nname: otel\n\
             spec: {{ backend: {{ type: otlp, url: \"{}\" }}, flushInterval: 50ms, tags: {{ env: test }} }}\n\
             ---\ntype: AccessLog\nmesh: default\nname: everything\nspec: {{ path: {} }}\n",
            collector.otlp_url(),
            log.display()
        ),
    )
    .await
    .unwrap();
    wait_config(&[&proxy_a, &proxy_b], "everything").await;
    wait_config(&[&proxy_a, &proxy_b], "otel").await;

    let _app_b = start_app(&mesh, "b", app_b_port, &collector.otlp_url(), None);
    let _app_a = start_app(
        &mesh,
        "a",
        app_a_port,
        &collector.otlp_url(),
        Some(format!("http://127.0.0.1:{to_b}")),
    );
    // The whole chain answers (these warm-up requests are traces of their own).
    let entry = format!("http://127.0.0.1:{}/hello", spec_a.inbound_port);
    wait::until(
        "a and b answering through both proxies",
        Duration::from_secs(30),
        || async {
            http_get(&entry)
                .await
                .ok()
                .filter(|(status, body)| *status == 200 && body == "a\nb\n")
        },
    )
    .await
    .unwrap();

    let (status, body) = http_get_with(&entry, &[traceparent()]).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "a\nb\n"));

    let spans = wait::until(
        "the 5 spans of the trace",
        Duration::from_secs(20),
        || async {
            let spans = collector.trace(&TRACE);
            (spans.len() >= 5).then_some(spans)
        },
    )
    .await
    .unwrap();
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let proxy_a_in = one(&spans, "a", otlp::SPAN_KIND_SERVER);
    let app_a = one(&spans, "app-a", otlp::SPAN_KIND_SERVER);
    let proxy_a_out = one(&spans, "a", otlp::SPAN_KIND_CLIENT);
    let proxy_b_in = one(&spans, "b", otlp::SPAN_KIND_SERVER);
    let app_b = one(&spans, "app-b", otlp::SPAN_KIND_SERVER);
    // client → proxy A inbound → app A → proxy A outbound → proxy B inbound → app B
    assert_eq!(proxy_a_in.parent_span_id, CLIENT_SPAN);
    assert_eq!(app_a.parent_span_id, proxy_a_in.span_id);
    assert_eq!(proxy_a_out.parent_span_id, app_a.span_id);
    assert_eq!(proxy_b_in.parent_span_id, proxy_a_out.span_id);
    assert_eq!(app_b.parent_span_id, proxy_b_in.span_id);

    assert_eq!(attribute(proxy_a_out, "peer.service"), "b");
    assert_eq!(attribute(proxy_a_out, "http.request.method"), "GET");
    assert_eq!(attribute(proxy_a_out, "url.path"), "/hello");
    assert_eq!(attribute(proxy_a_out, "http.response.status_code"), "200");
    assert_eq!(attribute(proxy_b_in, "weft.destination_service"), "b");
    assert_eq!(attribute(proxy_b_in, "env"), "test");
    for span in [proxy_a_in, proxy_a_out, proxy_b_in] {
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(span.start_time_unix_nano > 0);
    }

    // One access log line per proxy hop, with the trace id and each hop's span.
    let lines = wait::until(
        "3 access log lines of the trace",
        Duration::from_secs(10),
        || async {
            let text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|l: &serde_json::Value| l["traceId"] == hex(&TRACE))
                .collect();
            (lines.len() >= 3).then_some(lines)
        },
    )
    .await
    .unwrap();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let line = |direction: &str, destination: &str| {
        lines
            .iter()
            .find(|l| l["direction"] == direction && l["destinationService"] == destination)
            .unwrap_or_else(|| panic!("no {direction} {destination} line in {lines:#?}"))
    };
    for (l, span) in [
        (line("inbound", "a"), proxy_a_in),
        (line("outbound", "b"), proxy_a_out),
        (line("inbound", "b"), proxy_b_in),
    ] {
        assert_eq!(l["spanId"], hex(&span.span_id), "{l}");
        assert_eq!(l["status"], 200);
        assert_eq!(l["method"], "GET");
        assert_eq!(l["path"], "/hello");
        assert!(l["durationMs"].as_f64().unwrap() >= 0.0);
        assert_eq!(
            l["bytesOut"],
            if l["destinationService"] == "a" { 4 } else { 2 }
        );
    }
    assert_eq!(line("outbound", "b")["sourceService"], "a");
    let upstream = format!("127.0.0.1:{}", proxy_b.spec.inbound_port);
    assert_eq!(line("outbound", "b")["upstream"], upstream.as_str());
}

/// `weft_trace_*` counter `name` of `proxy`.
async fn counter(proxy: &Proxy, name: &str) -> u64 {
    let (_, text) = http_get(&proxy.admin_url("/metrics")).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn tracing_to(url: &str) -> String {
    format!(
        "type: Tracing\nmesh: default\nname: gone\n\
         spec: {{ backend: {{ type: otlp, url: \"{url}\" }}, maxQueueSpans: 16, maxBatchSpans: 4, \
         flushInterval: 10ms, exportTimeout: 200ms }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_collector_fails_no_request() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();

    // Nothing listens on a port that was bound and closed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1/traces", listener.local_addr().unwrap())
    };
    mesh.apply_ok(&cp, &tracing_to(&closed)).await.unwrap();
    wait_config(&[&caller, &backend.proxy], &closed).await;
    let answers = burst(&url, 300, 8, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 300, "{answers:?}");
    wait::until(
        "spans dropped for a dead collector",
        Duration::from_secs(10),
        || async { (counter(&caller, "weft_trace_spans_dropped_total").await > 0).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(counter(&caller, "weft_trace_spans_exported_total").await, 0);

    // A collector that accepts and never answers.
    let (port, _silent) = silent_collector().await;
    let silent = format!("http://127.0.0.1:{port}/v1/traces");
    mesh.apply_ok(&cp, &tracing_to(&silent)).await.unwrap();
    wait_config(&[&caller, &backend.proxy], &silent).await;
    let dropped = counter(&caller, "weft_trace_spans_dropped_total").await;
    let failures = counter(&caller, "weft_trace_export_failures_total").await;
    let answers = burst(&url, 300, 8, |_| vec![]).await;
    assert_eq!(count(&answers, |a| a.status == 200), 300, "{answers:?}");
    wait::until(
        "exports to a silent collector time out",
        Duration::from_secs(10),
        || async {
            let more_dropped = counter(&caller, "weft_trace_spans_dropped_total").await > dropped;
            let more_failed = counter(&caller, "weft_trace_export_failures_total").await > failures;
            (more_dropped && more_failed).then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_spans_have_the_v2_shape_and_b3_is_joined() {
    let collector = Receiver::start().await;
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    mesh.apply_ok(
        &cp,
        &format!(
            "type: Tracing\nmesh: default\nname: zipkin\n\
             spec: {{ backend: {{ type: zipkin, url: \"{}\" }}, flushInterval: 20ms, tags: {{ team: mesh }} }}\n",
            collector.zipkin_url()
        ),
    )
    .await
    .unwrap();
    wait_config(&[&caller, &backend.proxy], "zipkin").await;

    let trace = hex(&TRACE);
    let b3 = format!("{trace}-{}-1", hex(&CLIENT_SPAN));
    let (status, _) = http_get_with(&url, &[("b3", b3)]).await.unwrap();
    assert_eq!(status, 200);
    let spans = wait::until("2 zipkin spans", Duration::from_secs(20), || async {
        let spans = collector.zipkin_trace(&trace);
        (spans.len() >= 2).then_some(spans)
    })
    .await
    .unwrap();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let client = spans.iter().find(|s| s["kind"] == "CLIENT").unwrap();
    let server = spans.iter().find(|s| s["kind"] == "SERVER").unwrap();
    assert_eq!(client["parentId"], hex(&CLIENT_SPAN));
    assert_eq!(server["parentId"], client["id"]);
    assert_eq!(client["localEndpoint"]["serviceName"], "web");
    assert_eq!(client["remoteEndpoint"]["serviceName"], "backend");
    assert_eq!(client["remoteEndpoint"]["ipv4"], "127.0.0.1");
    assert_eq!(server["localEndpoint"]["serviceName"], "backend");
    for span in [client, server] {
        assert_eq!(span["id"].as_str().unwrap().len(), 16);
        assert!(span["timestamp"].as_u64().unwrap() > 1_600_000_000_000_000);
        assert!(span["duration"].as_u64().unwrap() >= 1);
        assert_eq!(span["tags"]["http.response.status_code"], "200");
        assert_eq!(span["tags"]["http.request.method"], "GET");
        assert_eq!(span["tags"]["team"], "mesh");
        assert!(span["tags"].get("error").is_none());
    }
}
