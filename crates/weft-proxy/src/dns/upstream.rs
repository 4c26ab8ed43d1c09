//! The host's resolvers, read from `/etc/resolv.conf`, and forwarding one
//! query to them over UDP or TCP. The proxy's own sockets are exempt from
//! the DNS redirect (by uid), so this reaches the real resolver.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

/// Where resolvers are configured.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How long one resolver may take to answer before the next is asked.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest DNS message (the TCP length prefix is 16 bits).
pub const MAX_MESSAGE: usize = 65535;

/// The resolvers of a `resolv.conf`'s `nameserver` lines, port 53; the
/// local resolver when there are none (as the C library does).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)]
    } else {
        servers
    }
}

/// Reads [`RESOLV_CONF`] (a missing file means the local resolver).
pub fn host_resolvers() -> Vec<SocketAddr> {
    parse_resolv_conf(&std::fs::read_to_string(RESOLV_CONF).unwrap_or_default())
}

/// Asks each resolver in turn over UDP; the first answer with the query's
/// ID wins.
pub async fn forward_udp(resolvers: &[SocketAddr], query: &[u8]) -> io::Result<Vec<u8>> {
    forward(resolvers, |r| udp_once(r, query)).await
}

/// Asks each resolver in turn over TCP (for clients that asked over TCP,
/// e.g. after a truncated UDP answer).
pub async fn forward_tcp(resolvers: &[SocketAddr], query: &[u8]) -> io::Result<Vec<u8>> {
    forward(resolvers, |r| tcp_once(r, query)).await
}

/// The first answer of `ask` over `resolvers`, each given [`QUERY_TIMEOUT`].
async fn forward<F, Fut>(resolvers: &[SocketAddr], ask: F) -> io::Result<Vec<u8>>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<Vec<u8>>>,
{
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no resolver configured");
    for &resolver in resolvers {
        match tokio::time::timeout(QUERY_TIMEOUT, ask(resolver)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{resolver} did not answer"),
                )
            }
        }
    }
    Err(last)
}

async fn udp_once(resolver: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match resolver {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A fresh socket per query: a random source port, and only the
    // resolver's answers (connect filters other senders).
    let socket = UdpSocket::bind(local).await?;
    socket.connect(resolver).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = socket.recv(&mut buf).await?;
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp_once(resolver: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(resolver).await?;
    write_framed(&mut stream, query).await?;
    read_framed(&mut stream).await?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "resolver closed the connection",
        )
    })
}

/// One length-prefixed DNS message (RFC 1035 §4.2.2), or `None` at a
/// clean end of stream.
pub async fn read_framed(stream: &mut (impl AsyncReadExt + Unpin)) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

pub async fn write_framed(
    stream: &mut (impl AsyncWriteExt + Unpin),
    message: &[u8],
) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "DNS message longer than 65535 bytes",
        )
    })?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines() {
        let conf = "# comment\nsearch example.com\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver nonsense\noptions ndots:2\n";
        assert_eq!(
            parse_resolv_conf(conf),
            vec![
                "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_resolv_conf(""),
            vec!["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
    }
}
