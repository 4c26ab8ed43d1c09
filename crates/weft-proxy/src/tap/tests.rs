//! Tap filters and the hub: matching, bounds, drops and stopping.

use std::{sync::Arc, time::Duration};

use http::Method;
use tokio::sync::mpsc;
use weft_api::proto::{TapRequest, tap_event};

use super::{MAX_TAPS, TapFilter, TapHub};
use crate::observe::{Direction, Edge, RequestRecord, Sink, TraceIds};

fn request(id: u64, path: &str) -> TapRequest {
    TapRequest {
        tap_id: id,
        path: path.to_owned(),
        ..TapRequest::default()
    }
}

#[test]
fn filters_match_path_prefix_and_method() {
    let any = TapFilter::parse("", "").unwrap();
    assert!(any.matches(&Method::DELETE, "/anything"));
    let f = TapFilter::parse("/api", "post").unwrap();
    assert!(f.matches(&Method::POST, "/api/orders"));
    assert!(!f.matches(&Method::GET, "/api/orders"));
    assert!(!f.matches(&Method::POST, "/health"));
    let err = TapFilter::parse("", "G T").unwrap_err();
    assert!(err.contains("\"G T\""), "{err}");
}

#[tokio::test]
async fn requests_reach_only_the_taps_they_match() {
    let hub = TapHub::default();
    let (out, mut events) = mpsc::channel(16);
    hub.start(1, TapFilter::parse("/api", "").unwrap(), out.clone())
        .unwrap();
    hub.start(2, TapFilter::parse("", "GET").unwrap(), out)
        .unwrap();
    hub.offer(&Method::POST, "/api/x", |id| request(id, "/api/x"));
    hub.offer(&Method::GET, "/other", |id| request(id, "/other"));
    let mut got = Vec::new();
    while let Ok(e) = events.try_recv() {
        let Some(tap_event::Kind::Request(r)) = e.kind else {
            panic!("not a request");
        };
        got.push((r.tap_id, r.path));
    }
    assert_eq!(got, [(1, "/api/x".to_owned()), (2, "/other".to_owned())]);

    assert!(hub.stop(1));
    assert!(!hub.stop(1));
    hub.offer(&Method::POST, "/api/x", |id| request(id, "/api/x"));
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let hub = TapHub::default();
    let (out, mut events) = mpsc::channel(2);
    hub.start(7, TapFilter::default(), out).unwrap();
    for _ in 0..5 {
        hub.offer(&Method::GET, "/", |id| request(id, "/"));
    }
    assert_eq!(hub.take_dropped(), [(7, 3)]);
    assert_eq!(hub.take_dropped(), []);
    assert!(events.try_recv().is_ok() && events.try_recv().is_ok());
}

#[tokio::test]
async fn at_most_max_taps_and_a_stream_ending_stops_its_taps() {
    let hub = TapHub::default();
    let (out, _events) = mpsc::channel(1);
    for id in 0..MAX_TAPS as u64 {
        hub.start(id, TapFilter::default(), out.clone()).unwrap();
    }
    let err = hub
        .start(99, TapFilter::default(), out.clone())
        .unwrap_err();
    assert!(err.contains("already runs"), "{err}");
    let (other, _other_events) = mpsc::channel(1);
    hub.stop(0);
    hub.start(100, TapFilter::default(), other.clone()).unwrap();
    hub.stop_stream(&out);
    assert_eq!(hub.running(), 1);
    hub.stop_stream(&other);
    assert_eq!(hub.running(), 0);
}

#[tokio::test]
async fn the_sink_turns_a_record_into_the_event_of_each_matching_tap() {
    let hub = TapHub::default();
    let (out, mut events) = mpsc::channel(4);
    hub.start(3, TapFilter::parse("/orders", "POST").unwrap(), out)
        .unwrap();
    let record = |method: Method, uri: &str| RequestRecord {
        edge: Arc::new(Edge {
            direction: Direction::Outbound,
            source_service: Arc::from("web"),
            destination_service: Arc::from("backend"),
            route: Arc::from(""),
        }),
        method,
        uri: uri.parse().unwrap(),
        host: Some(http::HeaderValue::from_static("backend.mesh")),
        status: 201,
        start: std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        head_latency: Duration::from_micros(1500),
        duration: Duration::from_micros(2500),
        bytes_in: 10,
        bytes_out: 20,
        upstream: Some("127.0.0.1:9000".parse().unwrap()),
        trace: Some(TraceIds {
            trace_id: [0xab; 16],
            span_id: [1; 8],
            parent_span_id: None,
            sampled: true,
        }),
        retries: 0,
    };
    hub.request(&record(Method::GET, "/orders/1"));
    hub.request(&record(Method::POST, "/orders?x=1"));
    let Some(tap_event::Kind::Request(r)) = events.recv().await.unwrap().kind else {
        panic!("not a request");
    };
    assert!(events.try_recv().is_err(), "the GET did not match");
    let expected = TapRequest {
        tap_id: 3,
        direction: "outbound".into(),
        source_service: "web".into(),
        destination_service: "backend".into(),
        method: "POST".into(),
        authority: "backend.mesh".into(),
        path: "/orders".into(),
        status: 201,
        start_unix_ms: 1_700_000_000_123,
        head_latency_us: 1500,
        duration_us: 2500,
        bytes_in: 10,
        bytes_out: 20,
        upstream: "127.0.0.1:9000".into(),
        trace_id: "ab".repeat(16),
        route: String::new(),
    };
    assert_eq!(r, expected);
}
