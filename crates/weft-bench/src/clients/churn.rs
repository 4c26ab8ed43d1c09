//! New-connection churn: every operation opens a TCP connection, sends one
//! HTTP/1.1 request with `Connection: close`, reads the response and closes.
//! The rate is connections per second.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpStream;

use super::{Load, http1, timed};
use crate::load::{LoadResult, closed_loop, open_loop};

pub async fn run(addr: SocketAddr, load: Load, duration: Duration) -> anyhow::Result<LoadResult> {
    let op = move || async move {
        timed("connection", async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            http1::get(&mut stream, true).await
        })
        .await
    };
    Ok(match load {
        Load::Open(rate) => open_loop(rate, duration, op).await,
        Load::Closed(n) => closed_loop(n, duration, op).await,
    })
}
