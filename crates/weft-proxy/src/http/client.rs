//! A pooled HTTP client bound to one upstream address: a peer proxy's
//! inbound or the local service.
//!
//! The client always dials the same address, whatever the request's URI
//! says. That lets the URI keep the authority the app sent (HTTP/2 sends it
//! as `:authority`) while connections are still pooled per endpoint.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Uri, uri::Authority};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use tokio::net::TcpStream;

use super::RequestBody;
use crate::tcp;

/// A connection pool to one address, speaking HTTP/1.1 or HTTP/2 with
/// prior knowledge. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Upstream {
    addr: SocketAddr,
    /// `addr` as an authority, made once so requests that need one don't
    /// format it each time.
    authority: Authority,
    http2: bool,
    client: Client<FixedConnector, RequestBody>,
}

impl Upstream {
    pub fn new(addr: SocketAddr, http2: bool) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new());
        // The request's Host header is the app's; the client only adds one
        // when the request has none (it came in over HTTP/2).
        builder.set_host(true);
        if http2 {
            builder.http2_only(true);
        }
        // A SocketAddr always formats as a valid authority ("[::1]:80").
        let authority = Authority::try_from(addr.to_string())
            .unwrap_or_else(|_| Authority::from_static("upstream"));
        Self {
            addr,
            authority,
            http2,
            client: builder.build(FixedConnector { addr }),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn is_http2(&self) -> bool {
        self.http2
    }

    pub fn client(&self) -> &Client<FixedConnector, RequestBody> {
        &self.client
    }
}

/// Dials one address, with the proxy's connect timeout and `TCP_NODELAY`.
#[derive(Clone, Debug)]
pub struct FixedConnector {
    addr: SocketAddr,
}

impl tower::Service<Uri> for FixedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let addr = self.addr;
        Box::pin(async move { tcp::connect(addr).await.map(TokioIo::new) })
    }
}
