//! The backend every topology shares: one process with
//! * HTTP on `http` (HTTP/1.1 and HTTP/2 prior knowledge): `GET /` answers a
//!   small body; `POST /echo` streams the request body back;
//! * gRPC on `grpc`: `weft.bench.v1.Echo/Unary` (`proto/bench.proto`);
//! * a TCP source on `tcp`: writes bytes on every connection until it closes
//!   (the opaque-stream throughput workload reads them).

use std::{convert::Infallible, net::SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{io::AsyncWriteExt, net::TcpListener};
use tonic::{Status, transport::server::TcpIncoming};

use crate::proto::{
    EchoReply, EchoRequest,
    echo_server::{Echo, EchoServer},
};

/// The body of `GET /`.
pub const SMALL_BODY: &[u8] = b"hello from the weft bench backend\n";
/// Chunk the TCP source writes.
const SOURCE_CHUNK: usize = 64 * 1024;

type Body = BoxBody<Bytes, hyper::Error>;

/// Binds all three listeners, prints `ready` and serves until killed.
pub async fn run(http: SocketAddr, grpc: SocketAddr, tcp: SocketAddr) -> anyhow::Result<()> {
    let http = TcpListener::bind(http)
        .await
        .with_context(|| format!("bind {http}"))?;
    let grpc = TcpListener::bind(grpc)
        .await
        .with_context(|| format!("bind {grpc}"))?;
    let tcp = TcpListener::bind(tcp)
        .await
        .with_context(|| format!("bind {tcp}"))?;
    println!("ready");
    let grpc_server = tonic::transport::Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming(TcpIncoming::from(grpc).with_nodelay(Some(true)));
    tokio::select! {
        r = serve_http(http) => r,
        r = grpc_server => r.context("gRPC server failed"),
        r = serve_source(tcp) => r,
    }
}

async fn serve_http(listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let full = |status: StatusCode, body: &'static [u8]| {
        let mut resp = Response::new(
            Full::new(Bytes::from_static(body))
                .map_err(|e| match e {})
                .boxed(),
        );
        *resp.status_mut() = status;
        resp
    };
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => full(StatusCode::OK, SMALL_BODY),
        (&Method::POST, "/echo") => {
            let length = req.headers().get(header::CONTENT_LENGTH).cloned();
            let mut resp = Response::new(req.into_body().boxed());
            if let Some(length) = length {
                resp.headers_mut().insert(header::CONTENT_LENGTH, length);
            }
            resp
        }
        _ => full(StatusCode::NOT_FOUND, b"not found\n"),
    })
}

async fn serve_source(listener: TcpListener) -> anyhow::Result<()> {
    let chunk = Bytes::from(vec![0x5a_u8; SOURCE_CHUNK]);
    loop {
        let (mut stream, _) = listener.accept().await?;
        let chunk = chunk.clone();
        tokio::spawn(async move { while stream.write_all(&chunk).await.is_ok() {} });
    }
}

struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(
        &self,
        req: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        Ok(tonic::Response::new(EchoReply {
            message: req.into_inner().message,
        }))
    }
}
