//! Small real servers that play the applications behind test proxies, and
//! a plain HTTP client for checks.

use std::{convert::Infallible, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tokio::{io::AsyncWriteExt, net::TcpListener, task::JoinHandle};
use tonic::{Status, Streaming};

use crate::echo::{
    EchoReply, EchoRequest,
    echo_server::{Echo, EchoServer},
};

/// A server task on a loopback port, stopped when dropped.
pub struct ServerHandle {
    pub port: u16,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn new(port: u16, task: JoinHandle<()>) -> Self {
        Self { port, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops accepting and drops open connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> (TcpListener, u16) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a test server: {e}"),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    (listener, port)
}

/// HTTP/1.1 and HTTP/2 server answering `NAME METHOD PATH` plus the request
/// body it received, with header `x-server: NAME`.
pub async fn http_server(name: &str) -> ServerHandle {
    let (listener, port) = bind().await;
    let name: Arc<str> = name.into();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let name = name.clone();
                    async move {
                        let head = format!("{name} {} {}\n", req.method(), req.uri().path());
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut out = head.into_bytes();
                        out.extend_from_slice(&body);
                        let resp = Response::builder()
                            .header("x-server", &*name)
                            .body(Full::new(Bytes::from(out)))
                            .unwrap_or_default();
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    ServerHandle { port, task }
}

/// Echoes every byte it receives on each connection.
pub async fn tcp_echo_server() -> ServerHandle {
    let (listener, port) = bind().await;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    ServerHandle { port, task }
}

/// WebSocket server echoing every message back.
pub async fn websocket_echo_server() -> ServerHandle {
    let (listener, port) = bind().await;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                while let Some(Ok(msg)) = rx.next().await {
                    if msg.is_close() || tx.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    ServerHandle { port, task }
}

struct EchoService {
    name: String,
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(
        &self,
        req: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        let message = req.into_inner().message;
        if message == "fail" {
            return Err(Status::failed_precondition("asked to fail"));
        }
        Ok(tonic::Response::new(EchoReply {
            message,
            server: self.name.clone(),
        }))
    }

    type ChatStream = ReplyStream;

    async fn chat(
        &self,
        req: tonic::Request<Streaming<EchoRequest>>,
    ) -> Result<tonic::Response<Self::ChatStream>, Status> {
        let server = self.name.clone();
        let replies = req.into_inner().map(move |r| {
            r.map(|r| EchoReply {
                message: r.message,
                server: server.clone(),
            })
        });
        Ok(tonic::Response::new(Box::pin(replies)))
    }
}

/// gRPC server (HTTP/2) for `weft.test.v1.Echo`.
pub async fn grpc_echo_server(name: &str) -> ServerHandle {
    let (listener, port) = bind().await;
    let service = EchoServer::new(EchoService { name: name.into() });
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    ServerHandle { port, task }
}

/// A gRPC client of `weft.test.v1.Echo` at `url`, once a call through it
/// succeeds (10 s at most).
pub async fn echo_client(
    url: &str,
) -> anyhow::Result<crate::echo::echo_client::EchoClient<tonic::transport::Channel>> {
    crate::wait::until(
        &format!("gRPC calls through {url}"),
        Duration::from_secs(10),
        || async {
            let mut client = crate::echo::echo_client::EchoClient::connect(url.to_owned())
                .await
                .ok()?;
            let ping = EchoRequest {
                message: "ping".into(),
            };
            client.unary(ping).await.ok()?;
            Some(client)
        },
    )
    .await
}

/// GET `url`: status and body text (5 s timeout).
pub async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    http_get_with(url, &[]).await
}

/// GET `url` with extra headers: status and body text (5 s timeout).
pub async fn http_get_with(url: &str, headers: &[(&str, String)]) -> anyhow::Result<(u16, String)> {
    let client = http_client();
    let call = async {
        let mut request = Request::get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let resp = client
            .request(request.body(Full::new(Bytes::new()))?)
            .await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .map_err(|_| anyhow::anyhow!("GET {url} timed out"))?
}

/// A pooled HTTP/1.1 client, for steady traffic in tests.
pub fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}
