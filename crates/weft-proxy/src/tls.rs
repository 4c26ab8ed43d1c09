//! Mutual TLS between proxies: this proxy's workload identity and the
//! peers' identities.
//!
//! * `identity` — the certificate this proxy presents, the roots it
//!   trusts and the mesh's mTLS mode, each swapped atomically;
//! * `verify` — the peer checks: chain to the trust bundle (webpki) and a
//!   SPIFFE ID of this mesh (or of one service, when calling it);
//! * `server` / `client` — the rustls configs of the inbound and outbound
//!   sides, and the handshakes;
//! * `detect` — TLS or plaintext, from the first bytes of a connection.
//!
//! Between proxies it is TLS 1.3 only, both sides present certificates,
//! and nothing is resumed: every connection is verified against the trust
//! bundle of the moment.

pub mod client;
pub mod detect;
pub mod identity;
pub mod server;
pub mod stats;
pub mod verify;

use std::{
    fmt, io,
    sync::{Arc, LazyLock},
    time::Duration,
};

use rustls::crypto::CryptoProvider;

pub use self::identity::{Credentials, Identity, TrustBundle};

/// How long a TLS handshake between proxies may take; past it the
/// connection is closed (inbound) or counts as a failed connect (outbound).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN names, in the server's order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The one crypto provider (ring), made once rather than per config.
pub static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

/// Who is on the other end of an inbound connection: the SPIFFE IDs of this
/// mesh that its verified certificate carries, or nobody known (plaintext).
///
/// Attached to every inbound HTTP request as an extension, for the
/// authorization layer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Plaintext,
    Mtls(Arc<[String]>),
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerIdentity::Plaintext => f.write_str("plaintext"),
            PeerIdentity::Mtls(ids) => f.write_str(&ids.join(",")),
        }
    }
}

/// A TLS failure in words: rustls prints its own errors well, except the
/// ones our verifiers raise, which it wraps in `Other(OtherError(..))`.
pub fn describe(error: &io::Error) -> String {
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return error.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            format!("invalid peer certificate: {other}")
        }
        other => other.to_string(),
    }
}
