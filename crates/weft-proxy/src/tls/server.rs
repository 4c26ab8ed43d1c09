//! The inbound side of mTLS: what a listener does with a connection it
//! just accepted, by the mode of the moment — plaintext (off), TLS only
//! (strict), or whichever the first bytes say (permissive) — and the
//! caller's identity once the handshake verified it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::{ServerConfig, server::NoServerSessionStorage};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tracing::{debug, info};

use super::{
    ALPN_H2, ALPN_HTTP1, HANDSHAKE_TIMEOUT, Identity, PROVIDER, PeerIdentity, describe,
    detect::{self, FirstBytes},
    identity::CurrentCertificate,
    stats::TlsStats,
    verify::{ClientVerifier, mesh_ids, uri_sans},
};
use crate::{config::MtlsMode, tcp::Socket};

/// How long a permissive listener waits for a caller's first bytes before
/// serving it as plaintext: a silent caller must not hold its connection
/// in limbo, and mesh TLS clients speak at once.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection ready for an inbound stack, and who is calling.
pub enum Accepted {
    Plaintext(TcpStream),
    Mtls(Box<TlsStream<Socket>>, PeerIdentity),
}

impl Accepted {
    pub fn peer(&self) -> PeerIdentity {
        match self {
            Accepted::Plaintext(_) => PeerIdentity::Plaintext,
            Accepted::Mtls(_, peer) => peer.clone(),
        }
    }
}

/// The inbound TLS of one listener. The rustls config only holds the
/// shared identity, so certificate and trust updates need no rebuild.
#[derive(Clone)]
pub struct InboundTls {
    identity: Arc<Identity>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for InboundTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundTls").finish_non_exhaustive()
    }
}

/// TLS 1.3, a client certificate required and verified, ALPN `h2` and
/// `http/1.1`, and no resumption: a resumed session would skip verifying
/// the caller against the current trust bundle.
pub fn server_config(identity: &Arc<Identity>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(PROVIDER.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(ClientVerifier::new(identity.clone())))
        .with_cert_resolver(Arc::new(CurrentCertificate(identity.clone())));
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

impl InboundTls {
    pub fn new(identity: Arc<Identity>) -> Result<Self, rustls::Error> {
        let acceptor = TlsAcceptor::from(server_config(&identity)?);
        Ok(Self { identity, acceptor })
    }

    /// Applies the current mode to a new connection; `None` when it was
    /// refused or its handshake failed (it is closed, counted and logged).
    pub async fn accept(&self, stream: TcpStream) -> Option<Accepted> {
        let stats = self.identity.stats();
        let peer_addr = stream.peer_addr().ok();
        let tls = match self.identity.mode() {
            MtlsMode::Off => false,
            MtlsMode::Permissive => {
                match tokio::time::timeout(DETECT_TIMEOUT, detect::first_bytes(&stream)).await {
                    Ok(Ok(FirstBytes::Tls)) => true,
                    // Silence past the timeout is served as plaintext: the
                    // stack after us has its own timeouts.
                    Ok(Ok(FirstBytes::Plaintext)) | Err(_) => false,
                    Ok(Ok(FirstBytes::Closed)) => return None,
                    Ok(Err(e)) => {
                        debug!(peer = ?peer_addr, error = %e, "connection failed before its first byte");
                        return None;
                    }
                }
            }
            MtlsMode::Strict => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, detect::first_bytes(&stream)).await {
                    Ok(Ok(FirstBytes::Tls)) => true,
                    Ok(Ok(FirstBytes::Plaintext)) => {
                        TlsStats::bump(&stats.plaintext_refused);
                        info!(peer = ?peer_addr, "plaintext connection refused: mTLS is strict");
                        return None;
                    }
                    Ok(Ok(FirstBytes::Closed)) => return None,
                    Ok(Err(e)) => {
                        debug!(peer = ?peer_addr, error = %e, "connection failed before its first byte");
                        return None;
                    }
                    Err(_) => {
                        TlsStats::bump(&stats.inbound_handshake_failures);
                        info!(peer = ?peer_addr, timeout = ?HANDSHAKE_TIMEOUT, "no TLS handshake in time; closing the connection");
                        return None;
                    }
                }
            }
        };
        if !tls {
            TlsStats::bump(&stats.inbound_plaintext);
            return Some(Accepted::Plaintext(stream));
        }
        self.handshake(stream, peer_addr).await
    }

    async fn handshake(
        &self,
        stream: TcpStream,
        peer_addr: Option<SocketAddr>,
    ) -> Option<Accepted> {
        let stats = self.identity.stats();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(Socket(stream))).await {
            Ok(Ok(tls)) => {
                TlsStats::bump(&stats.inbound_mtls);
                let peer = peer_identity(&tls, self.identity.mesh());
                debug!(peer = ?peer_addr, identity = %peer, "mTLS connection accepted");
                Some(Accepted::Mtls(Box::new(tls), peer))
            }
            Ok(Err(e)) => {
                TlsStats::bump(&stats.inbound_handshake_failures);
                info!(peer = ?peer_addr, error = %describe(&e), "inbound TLS handshake failed; closing the connection");
                None
            }
            Err(_) => {
                TlsStats::bump(&stats.inbound_handshake_failures);
                info!(peer = ?peer_addr, timeout = ?HANDSHAKE_TIMEOUT, "inbound TLS handshake timed out; closing the connection");
                None
            }
        }
    }
}

/// The caller's SPIFFE IDs, from the certificate the verifier accepted.
fn peer_identity(tls: &TlsStream<Socket>, mesh: &str) -> PeerIdentity {
    let ids = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| uri_sans(leaf).ok())
        .map(|sans| mesh_ids(sans, mesh))
        .unwrap_or_default();
    PeerIdentity::Mtls(ids.into())
}
