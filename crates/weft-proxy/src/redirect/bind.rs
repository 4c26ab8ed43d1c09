//! The sockets of a redirect listener: IPv4 always, IPv6 beside it where
//! the host has IPv6 (ip6tables redirects there). The IPv6 socket is
//! IPv6-only, so that `[::]:P` and `0.0.0.0:P` can both be bound.

use std::{io, net::SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::warn;

use crate::listeners::ApplyError;

/// As many pending connections as tokio's own `bind` allows.
const BACKLOG: i32 = 1024;

/// Binds `v4`, then `v6` if the host can: a host without IPv6 gets only
/// the first, with a warning (connections redirected over IPv6 would find
/// no listener).
pub fn both(v4: SocketAddr, v6: SocketAddr) -> Result<Vec<TcpListener>, ApplyError> {
    let mut out = vec![listen(v4).map_err(|source| ApplyError::Bind { addr: v4, source })?];
    match listen(v6) {
        Ok(listener) => out.push(listener),
        Err(e) => {
            warn!(addr = %v6, error = %e, "no IPv6 redirect listener; IPv6 connections redirected here are refused")
        }
    }
    Ok(out)
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // As tokio's `bind` does: a restarted proxy rebinds at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}
