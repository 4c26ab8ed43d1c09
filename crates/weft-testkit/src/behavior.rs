//! A test app whose behaviour a test steers while it runs: a share of
//! requests failing with 503, a delay before answering, a health endpoint
//! that can be turned down (`GET /health`, and gRPC's
//! `grpc.health.v1.Health/Check` over HTTP/2), and a count of the requests
//! it served. Every answer names the app ("who am I"), so tests see where a
//! request went.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::servers::ServerHandle;

/// The knobs of a [`behavior_server`], shared with the test.
#[derive(Debug)]
pub struct Behavior {
    pub name: String,
    /// Share of requests (0-100) answered `503 NAME fail`, at random.
    pub fail_percent: AtomicU32,
    /// How long each request waits before its answer.
    pub delay_ms: AtomicU64,
    /// What `GET /health` says: 200 when true, 503 when false; and the
    /// gRPC health check: SERVING or NOT_SERVING.
    pub healthy: AtomicBool,
    /// Requests served, `/health` not counted.
    pub requests: AtomicU64,
    /// `/health` probes served.
    pub probes: AtomicU64,
    /// Request body bytes received, over all requests.
    pub body_bytes: AtomicU64,
}

impl Behavior {
    pub fn set_fail_percent(&self, percent: u32) {
        self.fail_percent.store(percent, Ordering::Relaxed);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// An HTTP/1.1 and HTTP/2 app answering `NAME\n` (header `x-server: NAME`)
/// as steered by its [`Behavior`].
pub async fn behavior_server(name: &str) -> (ServerHandle, Arc<Behavior>) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a test server: {e}"),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let behavior = Arc::new(Behavior {
        name: name.to_owned(),
        fail_percent: AtomicU32::new(0),
        delay_ms: AtomicU64::new(0),
        healthy: AtomicBool::new(true),
        requests: AtomicU64::new(0),
        probes: AtomicU64::new(0),
        body_bytes: AtomicU64::new(0),
    });
    let shared = behavior.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let behavior = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let behavior = behavior.clone();
                    async move { Ok::<_, Infallible>(answer(&behavior, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (ServerHandle::new(port, task), behavior)
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(behavior: &Behavior, req: Request<Incoming>) -> Response<Body> {
    let name = &behavior.name;
    if req.uri().path() == "/grpc.health.v1.Health/Check" {
        behavior.probes.fetch_add(1, Ordering::Relaxed);
        return grpc_health(behavior.healthy.load(Ordering::Relaxed));
    }
    if req.uri().path() == "/health" {
        behavior.probes.fetch_add(1, Ordering::Relaxed);
        let status = if behavior.healthy.load(Ordering::Relaxed) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return reply(status, name, format!("{name} health\n"));
    }
    behavior.requests.fetch_add(1, Ordering::Relaxed);
    // Read the body so that a request is only counted as served once whole.
    if let Ok(body) = req.into_body().collect().await {
        let len = u64::try_from(body.to_bytes().len()).unwrap_or(u64::MAX);
        behavior.body_bytes.fetch_add(len, Ordering::Relaxed);
    }
    let delay = behavior.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if fastrand::u32(..100) < behavior.fail_percent.load(Ordering::Relaxed) {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            name,
            format!("{name} fail\n"),
        );
    }
    reply(StatusCode::OK, name, format!("{name}\n"))
}

fn reply(status: StatusCode, name: &str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(name) {
        response.headers_mut().insert("x-server", value);
    }
    response
}

/// A `HealthCheckResponse` with status SERVING (1) or NOT_SERVING (2), in
/// one gRPC frame, then `grpc-status: 0` in the trailers.
fn grpc_health(serving: bool) -> Response<Body> {
    let status = if serving { 1 } else { 2 };
    let frame = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let body = Full::new(frame)
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}
