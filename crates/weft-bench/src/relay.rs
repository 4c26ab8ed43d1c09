//! The floor of a proxy pair: a relay that only copies bytes between each
//! accepted connection and one to its upstream, on a single-threaded
//! runtime like the Weft proxies'. Two of them in a row cost what any
//! proxy pair pays on the machine before doing anything of its own: the
//! extra TCP hops, wake-ups and context switches (bench/README.md,
//! "Latency at 1,000 req/s").

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

/// Relays every connection accepted on `listen` to `upstream` until the
/// process is stopped.
pub fn run(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        serve(listener, upstream).await
    })
}

async fn serve(listener: TcpListener, upstream: SocketAddr) -> anyhow::Result<()> {
    loop {
        let (client, _) = listener.accept().await.context("accept")?;
        tokio::spawn(async move {
            if let Err(e) = relay(client, upstream).await {
                eprintln!("relay: {e:#}");
            }
        });
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut server = TcpStream::connect(upstream)
        .await
        .with_context(|| format!("cannot connect to {upstream}"))?;
    for stream in [&client, &server] {
        stream.set_nodelay(true)?;
    }
    // A peer closing or resetting ends the relay; that is not an error.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn copies_both_ways_through_the_upstream() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = front.local_addr().unwrap();
        tokio::spawn(serve(front, upstream));
        let mut client = TcpStream::connect(listen).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HELLO");
    }
}
