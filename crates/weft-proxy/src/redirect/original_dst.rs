//! The destination a redirected connection was meant for, from the
//! kernel's connection tracking (`SO_ORIGINAL_DST`, set by the nat table's
//! REDIRECT). A connection that was not redirected reports its own local
//! address, which callers must treat as "not redirected".
//!
//! The workspace denies unsafe code; this module is the one exception in
//! the proxy: a single `getsockopt` call on a socket we own, into a local
//! socket address whose size we pass.

#![allow(unsafe_code)]

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsRawFd,
};

use tokio::net::TcpStream;

/// `SO_ORIGINAL_DST` from `<linux/netfilter_ipv4.h>`; libc does not export it.
const SO_ORIGINAL_DST: libc::c_int = 80;
/// `IP6T_SO_ORIGINAL_DST` from `<linux/netfilter_ipv6/ip6_tables.h>`.
const IP6T_SO_ORIGINAL_DST: libc::c_int = 80;

/// The original destination of `stream`, an accepted TCP connection of
/// either family.
pub fn original_dst(stream: &TcpStream) -> io::Result<SocketAddr> {
    if stream.local_addr()?.is_ipv6() {
        original_dst_v6(stream)
    } else {
        original_dst_v4(stream)
    }
}

fn original_dst_v4(socket: &impl AsRawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid `sockaddr_in` (a plain C struct).
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in>())
        .map_err(|_| io::Error::other("sockaddr_in does not fit socklen_t"))?;
    // SAFETY: the fd is open for as long as `socket` is borrowed; `addr` and
    // `len` are live locals, and `len` tells the kernel how much it may write.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_IP,
            SO_ORIGINAL_DST,
            (&raw mut addr).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if libc::c_int::from(addr.sin_family) != libc::AF_INET {
        return Err(io::Error::other(format!(
            "SO_ORIGINAL_DST returned address family {}",
            addr.sin_family
        )));
    }
    let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    let port = u16::from_be(addr.sin_port);
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

fn original_dst_v6(socket: &impl AsRawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid `sockaddr_in6` (a plain C struct).
    let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in6>())
        .map_err(|_| io::Error::other("sockaddr_in6 does not fit socklen_t"))?;
    // SAFETY: as for IPv4 above, with a `sockaddr_in6` and its size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_IPV6,
            IP6T_SO_ORIGINAL_DST,
            (&raw mut addr).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if libc::c_int::from(addr.sin6_family) != libc::AF_INET6 {
        return Err(io::Error::other(format!(
            "IP6T_SO_ORIGINAL_DST returned address family {}",
            addr.sin6_family
        )));
    }
    let ip = Ipv6Addr::from(addr.sin6_addr.s6_addr);
    let port = u16::from_be(addr.sin6_port);
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// Without a redirect, conntrack still knows the connection (if it is
    /// loaded) and reports the address that was dialled; without conntrack
    /// the call fails with an error, never garbage.
    #[tokio::test]
    async fn an_unredirected_connection_reports_its_own_address_or_an_error() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            // A host without IPv6 has no [::1] to test with.
            let Ok(listener) = TcpListener::bind(local).await else {
                continue;
            };
            let addr = listener.local_addr().unwrap();
            let _client = TcpStream::connect(addr).await.unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            match original_dst(&accepted) {
                Ok(dst) => assert_eq!(dst, addr),
                Err(e) => assert!(e.raw_os_error().is_some(), "{e}"),
            }
        }
    }
}
