//! Holds many open connections: each sends one keep-alive HTTP/1.1 request
//! and stays open. Prints `ready HELD FAILED [first error]` on one line once
//! all are up, then waits until its standard input closes (or a signal).

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpStream, sync::Semaphore, task::JoinSet};

use super::{http1, timed};

/// Connections opened at once.
const OPENING: usize = 200;

pub async fn run(addr: SocketAddr, connections: usize) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(OPENING));
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let permit = permits.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let result = timed("connection", async {
                let mut stream = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                http1::get(&mut stream, false).await?;
                Ok::<_, String>(stream)
            })
            .await;
            drop(permit);
            result
        });
    }
    let mut held = Vec::with_capacity(connections);
    let mut failed = 0_usize;
    let mut first_error = String::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => {
                failed += 1;
                if first_error.is_empty() {
                    first_error = e;
                }
            }
            Err(e) => {
                failed += 1;
                if first_error.is_empty() {
                    first_error = e.to_string();
                }
            }
        }
    }
    println!("ready {} {failed} {first_error}", held.len());
    tokio::select! {
        () = stdin_closed() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(held);
    Ok(())
}

/// Resolves when standard input reaches its end (the parent closed it).
pub async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut buf = [0_u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    })
    .await;
}
