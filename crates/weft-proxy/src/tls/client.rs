//! The outbound side of mTLS: the rustls config for calling one service's
//! endpoints (its ALPN, and the SPIFFE ID the server must have), and the
//! stream to a peer, plaintext or TLS.

use std::{
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::{ClientConfig, client::Resumption, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{
    ALPN_H2, ALPN_HTTP1, HANDSHAKE_TIMEOUT, Identity, PROVIDER, describe,
    identity::CurrentCertificate, stats::TlsStats, verify::ServerVerifier,
};
use crate::{
    config::MtlsMode,
    tcp::{self, Socket},
};

/// What the client offers in ALPN: `h2` for HTTP/2 and gRPC outbounds,
/// `http/1.1` for HTTP, nothing for opaque TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    None,
    Http1,
    H2,
}

/// Why a TLS connection to a peer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsConnectError {
    #[error("no workload certificate to present yet")]
    NoCertificate,
    #[error("TLS handshake with {0} timed out after {HANDSHAKE_TIMEOUT:?}")]
    Timeout(SocketAddr),
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
}

/// mTLS towards one service's endpoints. Cloning shares the config.
#[derive(Clone)]
pub struct PeerTls {
    identity: Arc<Identity>,
    connector: TlsConnector,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

/// TLS 1.3 with our current certificate, the server verified as
/// `service`, and no resumption (every connection is verified against the
/// trust bundle of the moment).
pub fn client_config(
    identity: &Arc<Identity>,
    service: &str,
    alpn: Alpn,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(PROVIDER.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::new(identity.clone(), service)))
        .with_client_cert_resolver(Arc::new(CurrentCertificate(identity.clone())));
    config.alpn_protocols = match alpn {
        Alpn::None => vec![],
        Alpn::Http1 => vec![ALPN_HTTP1.to_vec()],
        Alpn::H2 => vec![ALPN_H2.to_vec()],
    };
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

impl PeerTls {
    pub fn new(identity: Arc<Identity>, service: &str, alpn: Alpn) -> Result<Self, rustls::Error> {
        let connector = TlsConnector::from(client_config(&identity, service, alpn)?);
        Ok(Self {
            identity,
            connector,
        })
    }

    /// Whether new connections to peers use mTLS now.
    pub fn enabled(&self) -> bool {
        self.identity.mode() != MtlsMode::Off
    }

    /// Runs the handshake on a connection to `addr`.
    async fn secure(&self, tcp: TcpStream, addr: SocketAddr) -> io::Result<PeerStream> {
        self.handshake(tcp, addr)
            .await
            .map(|tls| PeerStream::Tls(Box::new(tls)))
            .map_err(io::Error::other)
    }

    async fn handshake(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<TlsStream<Socket>, TlsConnectError> {
        // Without a certificate the server would refuse us anyway; saying
        // so here is clearer than its alert.
        if self.identity.credentials().is_none() {
            return Err(TlsConnectError::NoCertificate);
        }
        // An IP address as server name sends no SNI; the verifier checks
        // the SPIFFE ID instead.
        let name = ServerName::IpAddress(addr.ip().into());
        let result = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            self.connector.connect(name, Socket(stream)),
        )
        .await;
        let error = match result {
            Ok(Ok(tls)) => return Ok(tls),
            Ok(Err(e)) => TlsConnectError::Handshake {
                addr,
                reason: describe(&e),
            },
            Err(_) => TlsConnectError::Timeout(addr),
        };
        TlsStats::bump(&self.identity.stats().outbound_handshake_failures);
        Err(error)
    }
}

/// A connection to a peer proxy, in plaintext or mTLS.
#[derive(Debug)]
pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<Socket>>),
}

impl PeerStream {
    /// Connects to `addr`, with mTLS when `tls` is given. Without `limit`
    /// the TCP connect gets [`tcp::CONNECT_TIMEOUT`] and the handshake its
    /// own timeout; with one (a Timeout policy's `connect`), both together
    /// must finish within it.
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<&PeerTls>,
        limit: Option<Duration>,
    ) -> io::Result<Self> {
        match limit {
            Some(limit) => tcp::within(limit, Self::secure(addr, tls, tcp::open(addr))).await,
            None => Self::secure(addr, tls, tcp::connect(addr)).await,
        }
    }

    async fn secure(
        addr: SocketAddr,
        tls: Option<&PeerTls>,
        tcp: impl Future<Output = io::Result<TcpStream>>,
    ) -> io::Result<Self> {
        let tcp = tcp.await?;
        match tls {
            Some(tls) => tls.secure(tcp, addr).await,
            None => Ok(PeerStream::Plain(tcp)),
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => crate::tcp::poll_write_gathered(Pin::new(s), cx, bufs),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerStream::Plain(s) => s.is_write_vectored(),
            PeerStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
