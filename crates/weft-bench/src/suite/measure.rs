//! Runs one workload through a running topology: a warm-up, then the
//! measured run, with the proxies' CPU time (from `/proc`, before and
//! after) and peak RSS (sampled every 200 ms) alongside the client's result.
//!
//! The machine may be shared (other builds, a noisy neighbour): each run
//! also records the CPU time used by processes that are not part of the
//! benchmark ("other CPU": machine busy time minus ours, steal included). A
//! run disturbed by more than a fifth of a core is repeated (up to twice),
//! and the least disturbed attempt is kept; before each attempt the harness
//! waits a little for a quiet moment. Repeats and waits share one time
//! budget per suite run, so a machine that stays busy cannot stretch a run
//! without end: its results just carry their "other CPU" figure.

use std::{
    net::SocketAddr,
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

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
    /// Other processes of the topology (Weft's control plane).
    pub others: Vec<u32>,
}

impl Probe {
    /// CPU seconds of everything the benchmark runs: the proxies, the
    /// backend, other topology processes, this process and its reaped children.
    fn ours(&self) -> f64 {
        self.proxy_cpu()
            + procfs::tree_cpu_seconds(self.server)
            + self
                .others
                .iter()
                .map(|p| procfs::tree_cpu_seconds(*p))
                .sum::<f64>()
            + procfs::own_seconds()
    }

    pub fn proxy_cpu(&self) -> f64 {
        self.proxies
            .iter()
            .map(|(_, p)| procfs::tree_cpu_seconds(*p))
            .sum()
    }

    /// Open sockets per proxy.
    pub fn sockets(&self) -> Vec<(String, usize)> {
        self.proxies
            .iter()
            .map(|(role, pid)| (role.clone(), procfs::tree_sockets(*pid)))
            .collect()
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

/// Other CPU above this share of one core makes a run disturbed.
pub const DISTURBED: f64 = 0.2;
const ATTEMPTS: usize = 3;
/// Longest wait for a quiet moment before one attempt.
const QUIET_WAIT: Duration = Duration::from_secs(10);

/// Milliseconds left for repeats and quiet waits in this process.
static BUDGET_MS: AtomicU64 = AtomicU64::new(0);

/// Sets the time the suite may spend on repeats and waits for quiet.
pub fn set_disturbance_budget(budget: Duration) {
    BUDGET_MS.store(budget.as_millis() as u64, Ordering::Relaxed);
}

fn budget_left() -> Duration {
    Duration::from_millis(BUDGET_MS.load(Ordering::Relaxed))
}

fn spend(d: Duration) {
    let ms = d.as_millis() as u64;
    let _ = BUDGET_MS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
        Some(b.saturating_sub(ms))
    });
}

/// Warm-up, then the measured run; repeated while disturbed (see the module docs).
pub async fn run(ctx: &Ctx, lanes: &Lanes, probe: &Probe, step: Step<'_>) -> Run {
    let mut best: Option<Run> = None;
    let mut attempts = 0;
    for attempt in 1..=ATTEMPTS {
        attempts = attempt;
        let run = once(ctx, lanes, probe, step).await;
        let share = run.other_cpu_s / run.duration_s.max(1e-3);
        let disturbed = run.skipped.is_none() && share > DISTURBED;
        if best
            .as_ref()
            .is_none_or(|b| run.other_cpu_s < b.other_cpu_s)
        {
            best = Some(run);
        }
        if !disturbed || budget_left() < step.duration + step.warmup {
            break;
        }
        spend(step.duration + step.warmup);
        if attempt < ATTEMPTS {
            eprintln!(
                "[weft-bench] {}: other processes used {:.0}% of a core; repeating",
                step.name,
                share * 100.0
            );
        }
    }
    let mut run = best.unwrap_or_default();
    run.attempts = attempts;
    run
}

/// Waits (up to `limit`) for half a second in which processes outside the
/// benchmark use less than [`DISTURBED`] of a core.
/// Waiting beyond the first window comes out of the shared budget.
async fn wait_quiet(probe: &Probe) {
    let window = Duration::from_millis(500);
    let start = tokio::time::Instant::now();
    let end = start + QUIET_WAIT.min(budget_left() + window);
    while tokio::time::Instant::now() < end {
        let (busy0, ours0) = (procfs::machine_busy_seconds(), probe.ours());
        tokio::time::sleep(window).await;
        let other = (procfs::machine_busy_seconds() - busy0) - (probe.ours() - ours0);
        if other < DISTURBED * window.as_secs_f64() {
            break;
        }
    }
    spend(start.elapsed().saturating_sub(window));
}

async fn once(ctx: &Ctx, lanes: &Lanes, probe: &Probe, step: Step<'_>) -> Run {
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
    wait_quiet(probe).await;
    if !step.warmup.is_zero() {
        let _ = client(ctx, &format!("{}-warmup", step.name), addr, w, step.warmup).await;
    }
    let (stop, stopped) = watch::channel(false);
    let sampler = tokio::spawn(sample_rss(probe.clone(), stopped));
    let (busy0, ours0) = (procfs::machine_busy_seconds(), probe.ours());
    let (cpu0, srv0) = (probe.proxy_cpu(), procfs::tree_cpu_seconds(probe.server));
    let result = client(ctx, step.name, addr, w, step.duration).await;
    let (cpu1, srv1) = (probe.proxy_cpu(), procfs::tree_cpu_seconds(probe.server));
    let (busy1, ours1) = (procfs::machine_busy_seconds(), probe.ours());
    run.other_cpu_s = ((busy1 - busy0) - (ours1 - ours0)).max(0.0);
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
