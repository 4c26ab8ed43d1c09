//! HTTP/1.1 `Upgrade` (WebSocket and the like): once both sides agreed on
//! `101 Switching Protocols`, the proxy stops parsing and copies bytes.

use http::{Request, Version, header::UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::headers::connection_has;
use crate::{drain::Watch, tcp};

/// Whether the request asks to switch protocols. Only HTTP/1.1 has
/// `Upgrade`; HTTP/2 forbids it.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

/// Waits for both the caller's and the upstream's connections to be handed
/// over after the 101, then copies between them until both close.
///
/// `_drain` is held so that shutdown waits for the upgraded connection
/// (up to its own deadline) like for any other.
pub async fn splice(downstream: OnUpgrade, upstream: OnUpgrade, _drain: Watch) {
    match tokio::try_join!(downstream, upstream) {
        Ok((downstream, upstream)) => {
            tcp::splice(TokioIo::new(downstream), TokioIo::new(upstream)).await
        }
        Err(e) => debug!(error = %e, "upgrade failed after 101"),
    }
}
