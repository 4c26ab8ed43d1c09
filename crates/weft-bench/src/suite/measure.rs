//! Runs one workload through a running topology: a warm-up, then the
//! measured run, with the proxies' CPU time (from `/proc`, before and
//! after) and peak RSS (sampled every 200 ms) alongside the client's result.

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::Context;
use tokio::{io::AsyncReadExt, sync::watch};

use super::{
    oha,
    process::Spawn,
    topology::{Ctx, Lanes},
    workloads::{Client, Lane, Workload, describe},
};
use crate::{
    clients::Load,
    load::LoadResult,
    procfs,
    results::{ProcRss, Run},
};

/// The processes whose CPU and memory a run records.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// (role, pid) of each proxy.
    pub proxies: Vec<(String, u32)>,
    pub server: u32,
}

impl Probe {
    pub fn proxy_cpu(&self) -> f64 {
        self.proxies
            .iter()
            .map(|(_, p)| procfs::tree_cpu_seconds(*p))
            .sum()
    }

    pub fn rss(&self) -> Vec<ProcRss> {
        self.proxies
            .iter()
            .map(|(role, pid)| ProcRss {
                role: role.clone(),
                bytes: procfs::tree_rss_bytes(*pid),
            })
            .collect()
    }
}

/// One measured step: what to run and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub name: &'a str,
    pub workload: &'a Workload,
    pub duration: Duration,
    pub warmup: Duration,
}

fn lane(lanes: &Lanes, lane: Lane) -> Option<SocketAddr> {
    match lane {
        Lane::Http => lanes.http,
        Lane::H2 => lanes.h2,
        Lane::Grpc => lanes.grpc,
        Lane::Tcp => lanes.tcp,
    }
}

/// The client's command line (program, args) for `workload` at `addr`.
fn command<'a>(
    ctx: &'a Ctx,
    addr: SocketAddr,
    w: &Workload,
    duration: Duration,
) -> (&'a Path, Vec<String>) {
    let threads = ctx.client_cpus.as_ref().map(|c| c.split(',').count());
    let body = ctx.dir.join("body-1mib.bin");
    let ms = duration.as_millis().to_string();
    let load_args = |kind: &str| {
        let mut a = vec![
            "load".to_owned(),
            kind.to_owned(),
            "--addr".into(),
            addr.to_string(),
        ];
        a.extend(["--duration-ms".into(), ms.clone()]);
        match w.load {
            Load::Open(rate) => a.extend(["--rate".into(), rate.to_string()]),
            Load::Closed(n) => a.extend(["--concurrency".into(), n.to_string()]),
        }
        a
    };
    match w.client {
        Client::Oha { .. } | Client::OhaBody => {
            (&ctx.oha, oha::args(addr, w, duration, &body, threads))
        }
        Client::Grpc => (&ctx.me, load_args("grpc")),
        Client::Churn => (&ctx.me, load_args("churn")),
        Client::Stream => (&ctx.me, load_args("stream")),
    }
}

/// Runs the client once and reads its result.
async fn client(
    ctx: &Ctx,
    name: &str,
    addr: SocketAddr,
    w: &Workload,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let (program, args) = command(ctx, addr, w, duration);
    let mut proc = Spawn::new(name, program, &ctx.logs)
        .args(args)
        .cpus(ctx.client_cpus.as_deref())
        .pipe_stdout()
        .start()?;
    let mut out = String::new();
    if let Some(mut stdout) = proc.stdout() {
        let limit = duration + Duration::from_secs(60);
        tokio::time::timeout(limit, stdout.read_to_string(&mut out))
            .await
            .with_context(|| format!("{name} did not finish within {limit:?}"))??;
    }
    proc.wait_or_kill(Duration::from_secs(5)).await;
    let parsed = match w.client {
        Client::Oha { .. } | Client::OhaBody => oha::parse(&out),
        _ => serde_json::from_str(&out).context("the client did not print JSON"),
    };
    parsed.with_context(|| format!("{name}: {}", proc.log_tail()))
}

/// Warm-up, then the measured run with CPU and peak RSS.
pub async fn run(ctx: &Ctx, lanes: &Lanes, probe: &Probe, step: Step<'_>) -> Run {
    let w = step.workload;
    let mut run = Run {
        workload: w.id.to_owned(),
        load: describe(w.load),
        open_loop: matches!(w.load, Load::Open(_)),
        unit: w.unit.to_owned(),
        tool: match w.client {
            Client::Oha { .. } | Client::OhaBody => "oha".into(),
            _ => "weft-bench".into(),
        },
        ..Run::default()
    };
    let Some(addr) = lane(lanes, w.lane) else {
        run.skipped = Some(format!("no {:?} lane in this topology", w.lane));
        return run;
    };
    if !step.warmup.is_zero() {
        let _ = client(ctx, &format!("{}-warmup", step.name), addr, w, step.warmup).await;
    }
    let (stop, stopped) = watch::channel(false);
    let sampler = tokio::spawn(sample_rss(probe.clone(), stopped));
    let (cpu0, srv0) = (probe.proxy_cpu(), procfs::tree_cpu_seconds(probe.server));
    let result = client(ctx, step.name, addr, w, step.duration).await;
    let (cpu1, srv1) = (probe.proxy_cpu(), procfs::tree_cpu_seconds(probe.server));
    let _ = stop.send(true);
    run.proxy_rss_peak = sampler.await.unwrap_or_default();
    run.server_cpu_s = srv1 - srv0;
    match result {
        Ok(r) => {
            run.ok = r.ok;
            run.errors = r.errors;
            run.first_error = r.first_error;
            run.duration_s = r.duration_s;
            run.rate = r.rate;
            run.latency = r.latency;
        }
        Err(e) => {
            run.errors = 1;
            run.first_error = Some(format!("{e:#}"));
        }
    }
    if !probe.proxies.is_empty() {
        let cpu = cpu1 - cpu0;
        run.proxy_cpu_s = Some(cpu);
        run.per_proxy_cpu_s = (cpu > 0.0).then(|| run.rate * run.duration_s / cpu);
    }
    run
}

async fn sample_rss(probe: Probe, mut stop: watch::Receiver<bool>) -> Vec<ProcRss> {
    let mut peak = probe.rss();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        for (max, now) in peak.iter_mut().zip(probe.rss()) {
            max.bytes = max.bytes.max(now.bytes);
        }
    }
    peak
}
