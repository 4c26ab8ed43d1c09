//! `weft demo-app`: a tiny HTTP service that answers with its name and, when
//! told to, the answer of the service it calls — so a response shows the
//! whole path a request took through the mesh.

use std::{convert::Infallible, net::SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use crate::{cli::DemoAppArgs, client::get_text};
use weft_sidecar::shutdown;

pub async fn run(args: DemoAppArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::new(args.address, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("demo app {} listening on {addr}", args.name);
    let app = std::sync::Arc::new(args);
    let stop = shutdown::signal_received();
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(app.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    app: std::sync::Arc<DemoAppArgs>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = json!({ "service": app.name, "path": req.uri().path() });
    let mut status = StatusCode::OK;
    if let Some(url) = &app.call {
        body["downstream"] = match get_text(url).await {
            Ok((s, text)) => {
                if !s.is_success() {
                    status = StatusCode::BAD_GATEWAY;
                }
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            Err(e) => {
                status = StatusCode::BAD_GATEWAY;
                json!({ "error": format!("{e:#}") })
            }
        };
    }
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(format!("{body}\n"))))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}
