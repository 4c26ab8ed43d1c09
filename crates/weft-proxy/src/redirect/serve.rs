//! What happens to one captured connection.
//!
//! Outbound: read the original destination; a mesh service's connection
//! goes to that service's stack (HTTP services after a look at the first
//! bytes, see [`Decision`]); anything else passes through to where it was
//! going, or is closed, per the mesh's `outsideMesh`.
//!
//! Inbound: the original destination's port picks the inbound whose mesh
//! port or application port it is, and its stack (mTLS, identity,
//! authorization) takes the connection; other ports follow `outsideMesh`.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tracing::{debug, warn};
use weft_api::mesh::transparent::OutsideMesh;

use super::{
    detect::{DETECT_TIMEOUT, Detected, detect},
    original_dst::original_dst,
    stats::RedirectStats,
    table::{ServiceRoute, Table},
};
use crate::{drain::Watch, tcp};

/// What to do with a mesh service's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The service's stack.
    Serve,
    /// Not what the service speaks: the peer's HTTP inbound could not carry it.
    Refuse(Detected),
    /// The client left before sending anything.
    Drop,
}

/// The decision needs the first bytes only for HTTP services, and never on
/// server-first ports, where the client waits for the server.
pub fn needs_detection(service: &ServiceRoute, port: u16, table: &Table) -> bool {
    service.protocol.is_http() && !table.server_first_ports.contains(&port)
}

/// An HTTP service takes HTTP/1, HTTP/2, and a client that has not spoken
/// yet (a preconnect); TLS or other bytes cannot go through its stack.
pub fn decide(detected: Detected) -> Decision {
    match detected {
        Detected::Http1 | Detected::Http2 | Detected::Silent => Decision::Serve,
        Detected::Closed => Decision::Drop,
        Detected::Tls | Detected::Opaque => Decision::Refuse(detected),
    }
}

/// Serves one connection captured on its way out of this host.
pub async fn outbound(table: &Table, stream: TcpStream, drain: Watch, stats: &RedirectStats) {
    const DIRECTION: &str = "outbound";
    let Some(dst) = destination(&stream, DIRECTION) else {
        return stats.count(DIRECTION, "no_destination", None);
    };
    let Some(service) = table.service_for(dst) else {
        return outside_mesh(table.outside_mesh, stream, dst, DIRECTION, stats).await;
    };
    let mut detected = None;
    if needs_detection(service, dst.port(), table) {
        let found = match detect(&stream, DETECT_TIMEOUT).await {
            Ok(d) => d,
            Err(e) => return debug!(error = %e, "captured connection failed before detection"),
        };
        debug!(service = %service.name, %dst, detected = ?found, "captured connection");
        detected = Some(found);
        match decide(found) {
            Decision::Serve => {}
            Decision::Drop => return stats.count(DIRECTION, "closed", detected),
            Decision::Refuse(what) => {
                stats.count(DIRECTION, "not_http", detected);
                return warn!(
                    service = %service.name,
                    %dst,
                    detected = ?what,
                    "the application sent something other than HTTP to an HTTP service; closing"
                );
            }
        }
    }
    stats.count(DIRECTION, "mesh", detected);
    service.route.clone().serve(stream, drain).await;
}

/// Serves one connection captured on its way in to this host.
pub async fn inbound(table: &Table, stream: TcpStream, drain: Watch, stats: &RedirectStats) {
    const DIRECTION: &str = "inbound";
    let Some(dst) = destination(&stream, DIRECTION) else {
        return stats.count(DIRECTION, "no_destination", None);
    };
    match table.inbound_for(dst.port()) {
        Some(route) => {
            stats.count(DIRECTION, "mesh", None);
            route.clone().serve(stream, drain).await;
        }
        None => outside_mesh(table.outside_mesh, stream, dst, DIRECTION, stats).await,
    }
}

/// The original destination, or `None` (and the connection dropped) when
/// there is none: not redirected, i.e. someone dialled the redirect port
/// itself, which would loop if passed through.
fn destination(stream: &TcpStream, direction: &str) -> Option<SocketAddr> {
    match (original_dst(stream), stream.local_addr()) {
        (Ok(dst), Ok(local)) if dst == local => {
            debug!(%dst, direction, "connection to the redirect port itself; closing");
            None
        }
        (Ok(dst), _) => Some(dst),
        (Err(e), _) => {
            warn!(error = %e, direction, "cannot read the original destination (are the iptables rules installed?); closing");
            None
        }
    }
}

async fn outside_mesh(
    policy: OutsideMesh,
    stream: TcpStream,
    dst: SocketAddr,
    direction: &'static str,
    stats: &RedirectStats,
) {
    match policy {
        OutsideMesh::Refuse => {
            stats.count(direction, "refused", None);
            debug!(%dst, direction, "destination outside the mesh refused");
        }
        OutsideMesh::Passthrough => {
            stats.count(direction, "passthrough", None);
            match tcp::connect(dst).await {
                Ok(upstream) => {
                    debug!(%dst, direction, "passing through");
                    tcp::splice(stream, upstream).await;
                }
                Err(e) => debug!(%dst, direction, error = %e, "passthrough connect failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_services_take_http_and_silence_and_refuse_the_rest() {
        assert_eq!(decide(Detected::Http1), Decision::Serve);
        assert_eq!(decide(Detected::Http2), Decision::Serve);
        assert_eq!(decide(Detected::Silent), Decision::Serve);
        assert_eq!(decide(Detected::Closed), Decision::Drop);
        assert_eq!(decide(Detected::Tls), Decision::Refuse(Detected::Tls));
        assert_eq!(decide(Detected::Opaque), Decision::Refuse(Detected::Opaque));
    }
}
