//! A test trace collector on a loopback port: decodes OTLP/HTTP protobuf
//! export requests (`POST /v1/traces`, from the Python SDK and from Weft
//! proxies alike) and keeps Zipkin v2 JSON bodies (`POST /api/v2/spans`).
//! Also a "silent" collector that accepts connections and never answers.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};
use weft_proxy::trace::otlp;

/// One span as received, with its resource's `service.name`.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub span: otlp::Span,
}

#[derive(Default)]
struct Store {
    otlp: Mutex<Vec<Received>>,
    zipkin: Mutex<Vec<serde_json::Value>>,
}

pub struct Receiver {
    pub port: u16,
    store: Arc<Store>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let store = Arc::new(Store::default());
        let shared = store.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(store.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { port, store, task }
    }

    pub fn otlp_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    pub fn zipkin_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/spans", self.port)
    }

    /// OTLP spans of the trace `trace_id` received so far.
    pub fn trace(&self, trace_id: &[u8; 16]) -> Vec<Received> {
        let spans = self.store.otlp.lock().unwrap();
        spans
            .iter()
            .filter(|r| r.span.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Zipkin spans of the trace `trace_id` (hex) received so far.
    pub fn zipkin_trace(&self, trace_id: &str) -> Vec<serde_json::Value> {
        let spans = self.store.zipkin.lock().unwrap();
        spans
            .iter()
            .filter(|s| s["traceId"] == trace_id)
            .cloned()
            .collect()
    }
}

async fn handle(
    store: Arc<Store>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(answer(400, "bad body")),
    };
    match path.as_str() {
        "/v1/traces" => match otlp::decode(&body) {
            Ok(request) => {
                let mut spans = store.otlp.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| kv.text())
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            spans.push(Received {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
                Ok(answer(200, ""))
            }
            Err(e) => Ok(answer(
                400,
                &format!("not an ExportTraceServiceRequest: {e}"),
            )),
        },
        "/api/v2/spans" => match serde_json::from_slice::<Vec<serde_json::Value>>(&body) {
            Ok(list) => {
                store.zipkin.lock().unwrap().extend(list);
                Ok(answer(202, ""))
            }
            Err(e) => Ok(answer(400, &format!("not a Zipkin span list: {e}"))),
        },
        _ => Ok(answer(404, "not found")),
    }
}

fn answer(status: u16, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

/// Accepts connections and never reads or answers; held until dropped.
pub async fn silent_collector() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (port, task)
}
