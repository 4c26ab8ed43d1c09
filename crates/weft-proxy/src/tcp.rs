//! Opaque TCP: connecting upstream within a deadline, and copying bytes
//! both ways without parsing them.

use std::{io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite, copy_bidirectional},
    net::TcpStream,
};
use tracing::debug;

/// How long a connect to an endpoint or local service may take; past it
/// the next endpoint is tried, so a black-holed peer cannot hang a connect.
/// It says nothing about a peer that vanishes once connected: HTTP/2
/// upstreams are pinged (see `http::client`); spliced TCP is left to the
/// two ends' own timeouts.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `addr` with [`CONNECT_TIMEOUT`] and `TCP_NODELAY` set.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    within(CONNECT_TIMEOUT, open(addr)).await
}

/// Connects to `addr` with `TCP_NODELAY` set and no time limit of its own:
/// for callers that bound a longer exchange (connect and handshake).
pub async fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    set_nodelay(&stream);
    Ok(stream)
}

/// Runs a connect, failing with `TimedOut` (naming `limit`) past it.
pub async fn within<T>(
    limit: Duration,
    connect: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, connect).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect timed out after {limit:?}"),
        )
    })?
}

/// A proxy adds a hop; Nagle's algorithm would add a delay on top of it.
pub fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        // The socket still works, only slower for small writes.
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Copies bytes both ways until both directions are closed.
///
/// An error here is a peer resetting or timing out its side, which ends the
/// connection like a close does, so it is only worth a debug line.
pub async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match copy_bidirectional(&mut a, &mut b).await {
        Ok((sent, received)) => debug!(sent, received, "connection closed"),
        Err(e) => debug!(error = %e, "connection ended with an error"),
    }
}
