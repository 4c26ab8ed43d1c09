//! gRPC unary load (oha cannot speak gRPC): `weft.bench.v1.Echo/Unary` over
//! a few HTTP/2 connections, open or closed loop.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

use super::{Load, timed};
use crate::{
    load::{LoadResult, closed_loop, open_loop},
    proto::{EchoRequest, echo_client::EchoClient},
};

/// Runs the load; `connections` HTTP/2 connections are used round robin.
pub async fn run(
    addr: SocketAddr,
    load: Load,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<LoadResult> {
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        channels.push(channel);
    }
    let channels: Arc<[Channel]> = channels.into();
    let next = Arc::new(AtomicUsize::new(0));
    let op = move || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let mut client = EchoClient::new(channels[i % channels.len()].clone());
        async move {
            let request = EchoRequest {
                message: "hello".into(),
            };
            timed("unary call", client.unary(request))
                .await
                .map(|r| r.into_inner().message.len() as u64)
        }
    };
    Ok(match load {
        Load::Open(rate) => open_loop(rate, duration, op).await,
        Load::Closed(n) => closed_loop(n, duration, op).await,
    })
}
