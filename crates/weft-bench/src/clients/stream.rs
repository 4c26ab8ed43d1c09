//! Opaque TCP throughput: `connections` connections read what the backend's
//! TCP source writes for `duration`. The rate is MB/s (10^6 bytes).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::{io::AsyncReadExt, net::TcpStream, task::JoinSet, time::Instant};

use crate::load::LoadResult;

pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..connections.max(1) {
        tasks.spawn(async move {
            let mut stream = TcpStream::connect(addr)
                .await
                .with_context(|| format!("cannot connect to {addr}"))?;
            let mut buf = vec![0_u8; 256 * 1024];
            let mut bytes = 0_u64;
            while Instant::now() < end {
                match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
                    Ok(Ok(0)) => anyhow::bail!("the stream closed after {bytes} bytes"),
                    Ok(Ok(n)) => bytes += n as u64,
                    Ok(Err(e)) => return Err(e).context("read"),
                    Err(_) => break,
                }
            }
            Ok(bytes)
        });
    }
    let mut result = LoadResult::default();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("stream task")? {
            Ok(bytes) => {
                result.ok += 1;
                result.bytes += bytes;
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    result.duration_s = start.elapsed().as_secs_f64();
    result.rate = result.bytes as f64 / 1e6 / result.duration_s.max(1e-9);
    Ok(result)
}
