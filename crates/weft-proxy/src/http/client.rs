//! A pooled HTTP client bound to one upstream address: a peer proxy's
//! inbound or the local service.
//!
//! The client always dials the same address, whatever the request's URI
//! says. That lets the URI keep the authority the app sent (HTTP/2 sends it
//! as `:authority`) while connections are still pooled per endpoint.
//!
//! HTTP/1.1 goes through the proxy's own pool ([`h1_pool`]): hyper's
//! connections, handed requests directly, with no task, boxed future or
//! hashed pool key per request. HTTP/2 shares one connection per endpoint
//! through hyper-util's client.
//!
//! Towards a peer with mTLS on, requests go over TLS connections, pooled
//! apart from plaintext ones (HTTP/2 requests carry the `https` scheme,
//! which tells the connector to run the handshake and keys hyper-util's
//! pool): a mode change never reuses a connection of the other kind.

pub mod h1;
pub mod h1_pool;

use super::{H2_KEEPALIVE_INTERVAL, H2_KEEPALIVE_TIMEOUT};
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Uri, uri::Authority, uri::Scheme};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connected, Connection},
    },
    rt::{TokioExecutor, TokioIo, TokioTimer},
};

use self::h1_pool::{H1Pool, IDLE_TIMEOUT, MAX_IDLE};
use super::RequestBody;
use crate::tls::client::{PeerStream, PeerTls};

/// A connection pool to one address, speaking HTTP/1.1 or HTTP/2 with
/// prior knowledge. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Upstream {
    addr: SocketAddr,
    /// `addr` as an authority, made once so requests that need one don't
    /// format it each time.
    authority: Authority,
    /// Set for peer proxies: mTLS whenever the mesh's mode says so.
    tls: Option<PeerTls>,
    transport: Transport,
}

/// How requests reach the upstream.
#[derive(Clone, Debug)]
pub enum Transport {
    Http1(Arc<H1Pool>),
    /// With prior knowledge: one shared connection.
    Http2(Box<Client<FixedConnector, RequestBody>>),
}

impl Upstream {
    /// The local service: always plaintext.
    pub fn new(addr: SocketAddr, http2: bool) -> Self {
        Self::build(addr, http2, None, None)
    }

    /// A peer proxy's inbound, called with mTLS while the mode is on.
    pub fn peer(addr: SocketAddr, http2: bool, tls: PeerTls) -> Self {
        Self::build(addr, http2, Some(tls), None)
    }

    /// [`Upstream::peer`] whose connects (TCP and TLS) must finish within
    /// `connect_timeout` (a Timeout policy's `connect`).
    pub fn peer_with_connect_timeout(
        addr: SocketAddr,
        http2: bool,
        tls: PeerTls,
        connect_timeout: Option<Duration>,
    ) -> Self {
        Self::build(addr, http2, Some(tls), connect_timeout)
    }

    fn build(
        addr: SocketAddr,
        http2: bool,
        tls: Option<PeerTls>,
        connect_timeout: Option<Duration>,
    ) -> Self {
        let transport = if http2 {
            Transport::Http2(Box::new(http2_client(FixedConnector {
                addr,
                tls: tls.clone(),
                connect_timeout,
            })))
        } else {
            Transport::Http1(H1Pool::new(addr, tls.clone(), connect_timeout))
        };
        // A SocketAddr always formats as a valid authority ("[::1]:80").
        let authority = Authority::try_from(addr.to_string())
            .unwrap_or_else(|_| Authority::from_static("upstream"));
        Self {
            addr,
            authority,
            tls,
            transport,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn is_http2(&self) -> bool {
        matches!(self.transport, Transport::Http2(_))
    }

    /// The scheme of requests sent now: `https` while mTLS to this peer is
    /// on. Read once per request, so a request never mixes the two.
    pub fn scheme(&self) -> Scheme {
        match &self.tls {
            Some(tls) if tls.enabled() => Scheme::HTTPS,
            _ => Scheme::HTTP,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// hyper-util's client for an HTTP/2 upstream.
fn http2_client(connector: FixedConnector) -> Client<FixedConnector, RequestBody> {
    let mut builder = Client::builder(TokioExecutor::new());
    // Idle connections are dropped before the peer drops them: an inbound
    // (hyper) closes idle connections after 30 s.
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE)
        .http2_only(true)
        // Pings to upstreams, idle or not: a host that vanished without a
        // FIN or RST would otherwise hold requests on its connection until
        // TCP gives up, about 15 minutes later.
        .http2_keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .http2_keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .http2_keep_alive_while_idle(true);
    // The client adds `:authority` from the URI, which keeps the app's.
    builder.set_host(true);
    builder.build(connector)
}

/// Dials one address for hyper-util's HTTP/2 client, with the proxy's
/// connect timeout and `TCP_NODELAY`, and runs the mTLS handshake for
/// `https` requests.
#[derive(Clone, Debug)]
pub struct FixedConnector {
    addr: SocketAddr,
    tls: Option<PeerTls>,
    connect_timeout: Option<Duration>,
}

impl tower::Service<Uri> for FixedConnector {
    type Response = TokioIo<PeerStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let addr = self.addr;
        let tls = match tls_for(uri.scheme() == Some(&Scheme::HTTPS), self.tls.as_ref()) {
            Ok(tls) => tls.cloned(),
            Err(e) => return Box::pin(async { Err(e) }),
        };
        let limit = self.connect_timeout;
        Box::pin(async move {
            let stream = PeerStream::connect(addr, tls.as_ref(), limit).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// The TLS settings for a connection that must be `secure` (or not).
/// Only peers have TLS, and only they are ever asked for it; a plaintext
/// upstream asked for it is a bug caught here rather than a silent
/// plaintext connection.
fn tls_for(secure: bool, tls: Option<&PeerTls>) -> io::Result<Option<&PeerTls>> {
    match (secure, tls) {
        (false, _) => Ok(None),
        (true, Some(tls)) => Ok(Some(tls)),
        (true, None) => Err(io::Error::other(
            "TLS requested for a plaintext-only upstream",
        )),
    }
}

impl Connection for PeerStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
