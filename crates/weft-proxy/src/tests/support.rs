//! Peers for the data-path tests: backends, clients, and proxies started
//! from configs built in the test.

use std::{
    convert::Infallible,
    error::Error as StdError,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use weft_api::Protocol;

use crate::{
    config::{EndpointConfig, InboundConfig, OutboundConfig},
    listeners::{
        self, Running,
        route::{Route, Spec},
    },
    tls::Identity,
};

pub type BoxError = Box<dyn StdError + Send + Sync>;
pub type TestBody = BoxBody<Bytes, BoxError>;

pub async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A port nothing listens on (refuses connections), for tests that need
/// a config with a fixed port or a dead endpoint. Another test could take
/// it in between, which is unlikely enough on loopback.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn inbound_config(
    listen: SocketAddr,
    service_address: SocketAddr,
    protocol: Protocol,
) -> InboundConfig {
    InboundConfig {
        listen,
        service: "backend".into(),
        service_address,
        protocol,
        tags: [("service".to_owned(), "backend".to_owned())].into(),
        permissions: vec![allow_all()],
        rate_limits: vec![],
        access_logs: vec![],
    }
}

/// The permission a mesh starts with: anyone may call.
pub fn allow_all() -> crate::authz::PermissionConfig {
    crate::authz::PermissionConfig {
        name: "allow-all".into(),
        from_service: None,
        action: weft_api::traffic_permission::Action::Allow,
        rules: vec![],
    }
}

pub fn outbound_config(
    listen: SocketAddr,
    protocol: Protocol,
    endpoints: &[SocketAddr],
) -> OutboundConfig {
    OutboundConfig {
        listen,
        service: "backend".into(),
        protocol,
        endpoints: endpoints_config(endpoints),
        policies: Default::default(),
        access_log: None,
    }
}

pub fn endpoints_config(addrs: &[SocketAddr]) -> Vec<EndpointConfig> {
    addrs
        .iter()
        .map(|&address| EndpointConfig {
            address,
            dataplane: format!("backend-{}", address.port()),
            tags: Default::default(),
        })
        .collect()
}

/// An inbound listener in front of `backend`, mTLS off.
pub async fn start_inbound(protocol: Protocol, backend: SocketAddr) -> (SocketAddr, Running) {
    start_inbound_with(protocol, backend, &Identity::new(super::ca::MESH)).await
}

/// An inbound listener in front of `backend` with `identity`'s mTLS.
pub async fn start_inbound_with(
    protocol: Protocol,
    backend: SocketAddr,
    identity: &Arc<Identity>,
) -> (SocketAddr, Running) {
    let (listener, addr) = listen().await;
    let config = inbound_config(addr, backend, protocol);
    let route = Route::inbound(&config, identity).unwrap();
    (
        addr,
        listeners::spawn(listener, Spec::inbound(&config), route),
    )
}

/// An outbound listener over `endpoints`, mTLS off; its route can swap
/// them.
pub async fn start_outbound(protocol: Protocol, endpoints: &[SocketAddr]) -> (SocketAddr, Running) {
    start_outbound_with(protocol, endpoints, &Identity::new(super::ca::MESH)).await
}

/// An outbound listener to service `backend` with `identity`'s mTLS.
pub async fn start_outbound_with(
    protocol: Protocol,
    endpoints: &[SocketAddr],
    identity: &Arc<Identity>,
) -> (SocketAddr, Running) {
    let (listener, addr) = listen().await;
    let config = outbound_config(addr, protocol, endpoints);
    let route = Route::outbound(&config, identity).unwrap();
    (
        addr,
        listeners::spawn(listener, Spec::outbound(&config), route),
    )
}

/// An outbound → inbound pair in front of `backend`.
pub struct Pair {
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    /// Held so the listeners keep running: dropping one drains it.
    _listeners: [Running; 2],
}

pub async fn pair(protocol: Protocol, backend: SocketAddr) -> Pair {
    let identity = Identity::new(super::ca::MESH);
    pair_with(protocol, backend, &identity, &identity).await
}

/// A pair whose outbound side runs `outbound`'s identity and whose
/// inbound side runs `inbound`'s, as two proxies would.
pub async fn pair_with(
    protocol: Protocol,
    backend: SocketAddr,
    outbound: &Arc<Identity>,
    inbound: &Arc<Identity>,
) -> Pair {
    let (inbound_addr, inbound_running) = start_inbound_with(protocol, backend, inbound).await;
    let (outbound_addr, outbound_running) =
        start_outbound_with(protocol, &[inbound_addr], outbound).await;
    Pair {
        outbound: outbound_addr,
        inbound: inbound_addr,
        _listeners: [outbound_running, inbound_running],
    }
}

/// An HTTP/1.1 + HTTP/2 server that says who it is and what it got:
/// * `POST /echo` streams the request body back as it arrives;
/// * `/trailers` answers `hello` then the trailer `grpc-status: 0`;
/// * anything else answers `NAME METHOD PATH host=HOST`.
pub struct Backend {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Backend {
    pub async fn start(name: &'static str) -> Self {
        let (listener, addr) = listen().await;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| async move {
                        Ok::<_, Infallible>(answer(name, req))
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, connections }
    }

    /// How many connections the backend accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn answer(name: &str, req: Request<Incoming>) -> Response<TestBody> {
    match req.uri().path() {
        "/echo" => Response::new(req.into_body().map_err(BoxError::from).boxed()),
        "/trailers" => {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let frames = vec![
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"hello"))),
                Ok(Frame::trailers(trailers)),
            ];
            Response::new(StreamBody::new(stream::iter(frames)).boxed())
        }
        path => {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("-");
            let text = format!("{name} {} {path} host={host}", req.method());
            Response::new(full(text))
        }
    }
}

pub fn full(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into()).map_err(BoxError::from).boxed()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(BoxError::from).boxed()
}

/// An HTTP/1.1 client on one connection (so keep-alive is observable).
pub async fn h1_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// An HTTP/2 client with prior knowledge, on one connection.
pub async fn h2_client(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// `GET path` with a Host header, over HTTP/1.1.
pub async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<TestBody>,
    path: &str,
) -> (StatusCode, HeaderMap, String) {
    let req = Request::get(path)
        .header("host", "backend.mesh")
        .body(empty())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    read(response).await
}

pub async fn read(response: Response<Incoming>) -> (StatusCode, HeaderMap, String) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Reads exactly `n` bytes of a response body, frame by frame.
pub async fn read_body_bytes(body: &mut Incoming, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = body.frame().await.expect("body ended early").unwrap();
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
    }
    got
}

/// A TCP server that writes its name on accept, then echoes.
pub async fn tcp_backend(name: &'static str) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if stream.write_all(name.as_bytes()).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Reads exactly `n` bytes from a stream as text.
pub async fn read_text(stream: &mut TcpStream, n: usize) -> String {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).await.unwrap();
    String::from_utf8(buf).unwrap()
}
