//! The observer hands each request and connection to every sink once,
//! with what the sites told it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[derive(Default)]
struct Collect {
    requests: Mutex<Vec<RequestRecord>>,
    opened: Mutex<Vec<ConnectionRecord>>,
    closed: Mutex<Vec<ConnectionRecord>>,
}

impl Sink for Collect {
    fn request(&self, record: &RequestRecord) {
        self.requests.lock().unwrap().push(record.clone());
    }
    fn connection_opened(&self, conn: &ConnectionRecord) {
        self.opened.lock().unwrap().push(conn.clone());
    }
    fn connection_closed(&self, conn: &ConnectionRecord) {
        self.closed.lock().unwrap().push(conn.clone());
    }
}

/// Answers every request with fixed ids and marks the headers.
struct FixedTracer;

impl Tracer for FixedTracer {
    fn begin(&self, _direction: Direction, headers: &mut HeaderMap) -> Option<TraceIds> {
        headers.insert("traceparent", HeaderValue::from_static("00-01-02-01"));
        Some(TraceIds {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            sampled: true,
        })
    }
}

fn observer_with_sink() -> (Arc<Observer>, Arc<Collect>) {
    let observer = Arc::new(Observer::default());
    observer.set_local_service("web");
    let sink = Arc::new(Collect::default());
    observer.install("test", Some(sink.clone()));
    (observer, sink)
}

/// A real hyper `Incoming` body: a request read by a hyper server over a
/// socket pair, handed out of the service through a channel.
async fn incoming_request(body: &'static str) -> http::Request<hyper::body::Incoming> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(req).await;
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service)
            .await;
    });
    tokio::spawn(async move {
        let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
            hyper_util::rt::TokioIo::new(client),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = http::Request::post("/orders/7?full=1")
            .header("host", "backend.mesh")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let _ = send.send_request(req).await;
    });
    rx.recv().await.unwrap()
}

#[tokio::test]
async fn a_request_is_recorded_once_when_its_response_body_ends() {
    let (observer, sink) = observer_with_sink();
    observer.set_tracer(Some(Arc::new(FixedTracer)));
    let edge = observer.outbound_edge("backend", Some("split"));
    let (observation, req) = observer.begin(&edge, incoming_request("hello").await);
    assert_eq!(req.headers()["traceparent"], "00-01-02-01");
    let read = req.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(read, "hello");
    let mut response = http::Response::builder()
        .status(201)
        .body(Full::new(Bytes::from_static(b"created!")))
        .unwrap();
    let upstream: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    response.extensions_mut().insert(UpstreamAddr(upstream));
    response.extensions_mut().insert(Retries(2));
    let response = observation.respond(response);
    assert!(
        sink.requests.lock().unwrap().is_empty(),
        "not before the body ends"
    );
    let sent = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(sent, "created!");

    let records = sink.requests.lock().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.direction(), Direction::Outbound);
    assert_eq!(r.source_service(), "web");
    assert_eq!(r.destination_service(), "backend");
    assert_eq!(r.route(), "split");
    assert_eq!(r.method, http::Method::POST);
    assert_eq!(r.path(), "/orders/7");
    assert_eq!(r.authority(), "backend.mesh");
    assert_eq!((r.status, r.bytes_in, r.bytes_out), (201, 5, 8));
    assert_eq!(r.upstream, Some(upstream));
    assert_eq!(r.retries, 2);
    assert_eq!(r.trace.map(|t| t.trace_id), Some([1; 16]));
    assert!(r.duration >= r.head_latency);
}

#[tokio::test]
async fn a_request_without_a_response_is_recorded_with_status_zero() {
    let (observer, sink) = observer_with_sink();
    let edge = inbound_edge("backend", &["web".to_owned()]);
    let (observation, _req) = observer.begin(&edge, incoming_request("").await);
    drop(observation);
    let records = sink.requests.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, 0);
    assert_eq!(records[0].source_service(), "web");
    assert_eq!(records[0].direction(), Direction::Inbound);
    assert!(records[0].trace.is_none(), "no tracer installed");
}

#[tokio::test]
async fn a_dropped_response_body_still_finishes_the_record() {
    let (observer, sink) = observer_with_sink();
    let edge = observer.outbound_edge("backend", None);
    let (observation, _req) = observer.begin(&edge, incoming_request("").await);
    let response = observation.respond(http::Response::new(Full::new(Bytes::from("x"))));
    drop(response);
    let records = sink.requests.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].status, records[0].bytes_out), (200, 0));
}

#[tokio::test]
async fn a_connection_reports_open_then_close_with_bytes_each_way() {
    let (observer, sink) = observer_with_sink();
    let edge = observer.outbound_edge("db", None);
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut observation = observer.open(&edge, Some(peer));
    assert_eq!(sink.opened.lock().unwrap().len(), 1);
    observation.connected("10.0.0.2:5432".parse().unwrap());
    let (app, proxy_side) = tokio::io::duplex(1024);
    let mut counted = observation.count(proxy_side);
    let mut app = app;
    app.write_all(b"select 1").await.unwrap();
    let mut buf = [0u8; 8];
    counted.read_exact(&mut buf).await.unwrap();
    counted.write_all(b"ok").await.unwrap();
    drop(counted);
    assert!(sink.closed.lock().unwrap().is_empty());
    drop(observation);
    let closed = sink.closed.lock().unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].bytes_in, closed[0].bytes_out), (8, 2));
    assert_eq!(closed[0].peer, Some(peer));
    assert_eq!(closed[0].upstream, Some("10.0.0.2:5432".parse().unwrap()));
}

#[test]
fn installing_a_slot_again_replaces_it_and_none_empties_it() {
    let (observer, _first) = observer_with_sink();
    let second = Arc::new(Collect::default());
    observer.install("test", Some(second));
    observer.install("other", Some(Arc::new(Collect::default())));
    assert_eq!(format!("{observer:?}").matches("test").count(), 1);
    observer.install("test", None);
    assert!(!format!("{observer:?}").contains("\"test\""));
}
