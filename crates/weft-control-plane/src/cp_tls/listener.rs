//! The REST API over TLS: an axum [`Listener`] that hands connections to
//! the server once their TLS handshake completed. Handshakes run in their
//! own tasks with a time limit, so a slow or silent client holds up no one.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::serve::Listener;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use super::ServerCert;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Completed handshakes waiting for the server to take them.
const BACKLOG: usize = 64;

/// Accepts TCP connections and serves TLS on them.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Serves `cert` on `listener`. Fails if the certificate or key is not
    /// usable PEM.
    pub fn new(listener: TcpListener, cert: &ServerCert) -> anyhow::Result<Self> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(cert)?));
        let local = listener.local_addr().context("API listener address")?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let accepting = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(Self {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// rustls (ring provider) serving `cert`, HTTP/1.1.
fn server_config(cert: &ServerCert) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the API's TLS certificate is not valid PEM")?;
    anyhow::ensure!(
        !chain.is_empty(),
        "the API's TLS certificate file holds no certificate"
    );
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .context("the API's TLS key is not a valid PEM private key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the API's TLS certificate and key do not match or are unsupported")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "API TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "API TLS handshake timed out"),
            }
        });
    }
}
