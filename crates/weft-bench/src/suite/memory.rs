//! Memory beyond idle and load: the proxies' RSS while a client holds many
//! open connections to the caller, and (Weft only) the caller's RSS with
//! many endpoints in its config, from simulated dataplanes of the backend
//! service that all point at the real server proxy.

use std::{net::SocketAddr, time::Duration};

use super::{
    measure::{self, Probe, Step},
    process::{Spawn, wait_line},
    topology::{Ctx, Lanes},
    weft::{WeftPair, endpoint_counts},
    workloads,
};
use crate::results::{HeldConnections, ManyEndpoints};

/// Opens `n` keep-alive connections to `addr` (one request each), records
/// the proxies' RSS while they are open, then closes them.
/// How long the connections are held before the proxies' RSS is read.
const HOLD_SETTLE: Duration = Duration::from_secs(6);

pub async fn held_connections(
    ctx: &Ctx,
    name: &str,
    addr: SocketAddr,
    n: usize,
    probe: &Probe,
) -> anyhow::Result<HeldConnections> {
    let mut proc = Spawn::new(name, &ctx.me, &ctx.logs)
        .args([
            "hold",
            "--addr",
            &addr.to_string(),
            "--connections",
            &n.to_string(),
        ])
        .cpus(ctx.client_cpus.as_deref())
        .pipe_stdout()
        .pipe_stdin()
        .start()?;
    let mut out = proc.stdout().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let line = wait_line(&mut out, "ready", Duration::from_secs(180)).await?;
    let mut parts = line.splitn(4, ' ').skip(1);
    let held: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let _failed: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let first_error = parts.next().map(str::to_owned).filter(|s| !s.is_empty());
    // The steady state of holding them, not the burst of opening them:
    // a proxy may give memory back once the connections are idle.
    tokio::time::sleep(HOLD_SETTLE).await;
    let rss = probe.rss();
    let sockets = probe.sockets();
    proc.close_stdin();
    proc.wait_or_kill(Duration::from_secs(10)).await;
    Ok(HeldConnections {
        wanted: n,
        held,
        first_error,
        rss,
        sockets,
    })
}

/// Registers `n` simulated dataplanes of the HTTP lane's service, waits
/// until the caller lists them, records its RSS, and runs a short HTTP/1.1
/// load through all of them.
pub async fn many_endpoints(
    ctx: &Ctx,
    pair: &WeftPair,
    lanes: &Lanes,
    probe: &Probe,
    n: usize,
    duration: Duration,
) -> anyhow::Result<ManyEndpoints> {
    let mut proc = Spawn::new("simulate-endpoints", &ctx.me, &ctx.logs)
        .args([
            "simulate",
            "--cp",
            &pair.dp_url,
            "--dataplanes",
            &n.to_string(),
        ])
        .args([
            "--service",
            "bench-http",
            "--port",
            &pair.ports.inbound[0].to_string(),
        ])
        .cpus(ctx.client_cpus.as_deref())
        .pipe_stdout()
        .pipe_stdin()
        .start()?;
    let mut out = proc.stdout().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    wait_line(&mut out, "ready", Duration::from_secs(300)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut in_config = 0;
    while tokio::time::Instant::now() < deadline {
        let counts = endpoint_counts(pair.ports.caller_admin)
            .await
            .unwrap_or_default();
        in_config = counts
            .iter()
            .find(|(s, _)| s == "bench-http")
            .map_or(0, |(_, c)| *c);
        if in_config > n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = probe.rss();
    let under_load = match workloads::find("http1-1k") {
        Some(w) => {
            let step = Step {
                name: "weft-endpoints-http1-1k",
                workload: &w,
                duration,
                warmup: Duration::ZERO,
            };
            Some(measure::run(ctx, lanes, probe, step).await)
        }
        None => None,
    };
    proc.close_stdin();
    proc.wait_or_kill(Duration::from_secs(10)).await;
    Ok(ManyEndpoints {
        simulated: n,
        in_config,
        rss_idle,
        under_load,
    })
}
