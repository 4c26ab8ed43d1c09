//! The suite's order of work: backend, then per topology start → idle
//! memory → every workload → held connections → (Weft) many endpoints →
//! stop; then the paired rounds of the targets' workloads; then
//! control-plane scale; then `results.json`.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;

use super::{
    backend::Backend,
    machine,
    measure::{self, Probe, Step},
    memory,
    topology::{self, Ctx, Running, Topology},
    weftcli::Capabilities,
    workloads::{self, BODY_BYTES},
};
use crate::{
    cpscale, procfs,
    results::{Memory, Results, Settings, TopologyResult},
};

/// What `weft-bench suite` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub out: PathBuf,
    pub repo: PathBuf,
    pub weft: PathBuf,
    /// What the Weft proxies run as.
    pub proxy: super::ProxyExe,
    pub oha: PathBuf,
    pub me: PathBuf,
    /// Pin the backend and proxies to CPU 0 and clients to CPU 1.
    pub pin: bool,
    /// Topology ids to run (all when empty).
    pub only: Vec<String>,
    /// Workload ids to run (the mode's plan when empty).
    pub workloads: Vec<String>,
    pub duration: Duration,
    pub warmup: Duration,
    pub hold_connections: usize,
    pub endpoints: usize,
    pub cp_scale: Vec<usize>,
    /// Time the suite may spend repeating disturbed runs and waiting for quiet.
    pub disturbance_budget: Duration,
    /// Paired rounds of the target workloads after the main pass (0: the
    /// targets read the main pass).
    pub rounds: usize,
    /// How long each paired round measures each workload.
    pub round_duration: Duration,
}

pub(super) fn say(msg: &str) {
    eprintln!("[weft-bench] {msg}");
}

pub async fn run(opts: &Options) -> anyhow::Result<Results> {
    std::fs::create_dir_all(&opts.out)?;
    let pin = opts.pin && machine_cpus() >= 2;
    let ctx = Ctx {
        dir: opts.out.clone(),
        logs: opts.out.join("logs"),
        weft: opts.weft.clone(),
        proxy: opts.proxy.clone(),
        oha: opts.oha.clone(),
        me: opts.me.clone(),
        proxy_cpus: pin.then(|| "0".to_owned()),
        client_cpus: pin.then(|| "1".to_owned()),
        weft_caps: Capabilities::probe(&opts.weft)?,
    };
    std::fs::write(ctx.dir.join("body-1mib.bin"), vec![b'x'; BODY_BYTES])?;
    measure::set_disturbance_budget(opts.disturbance_budget);
    let mut results = Results {
        machine: machine::collect(&opts.oha, &opts.repo),
        settings: Settings {
            mode: if opts.quick { "quick" } else { "full" }.into(),
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            pinning: if pin {
                "backend, proxies and control plane on CPU 0; load clients on CPU 1 (taskset)"
                    .into()
            } else {
                "none".into()
            },
            hold_connections: opts.hold_connections,
            endpoints: opts.endpoints,
            proxy_executable: opts.proxy.describe(),
            rounds: opts.rounds,
            round_duration_s: opts.round_duration.as_secs_f64(),
        },
        ..Results::default()
    };
    let plan: Vec<_> = if opts.workloads.is_empty() {
        workloads::plan(opts.quick)
    } else {
        opts.workloads
            .iter()
            .filter_map(|id| workloads::find(id))
            .collect()
    };
    let backend = Backend::start(&ctx)
        .await
        .context("cannot start the backend")?;
    for topology in Topology::ALL {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == topology.id()) {
            continue;
        }
        let mut result = TopologyResult {
            id: topology.id().into(),
            label: topology.label().into(),
            available: true,
            ..TopologyResult::default()
        };
        if let Some(why) = topology.unavailable(&ctx) {
            say(&format!("{}: {why}", topology.id()));
            result.available = false;
            result.note = Some(why);
            results.topologies.push(result);
            continue;
        }
        say(&format!("{}: starting", topology.id()));
        match measure_topology(&ctx, opts, topology, &backend, &plan, &mut result).await {
            Ok(()) => {}
            Err(e) => {
                say(&format!("{}: cannot start: {e:#}", topology.id()));
                result.available = !result.runs.is_empty();
                result.note = Some(format!("failed to start: {e:#}"));
            }
        }
        results.topologies.push(result);
        write(&opts.out, &results)?;
    }
    super::paired::run(&ctx, opts, &backend, &plan, &mut results).await;
    write(&opts.out, &results)?;
    drop(backend);
    for &n in &opts.cp_scale {
        say(&format!("cp-scale: {n} simulated dataplanes"));
        let cp_opts = cpscale::Options {
            weft: opts.weft.clone(),
            dataplanes: n,
            cp_cpus: ctx.proxy_cpus.clone(),
            log_dir: ctx.logs.clone(),
            token: String::new(),
            register_timeout: Duration::from_secs(if opts.quick { 30 } else { 60 }),
            change_timeout: Duration::from_secs(if opts.quick { 20 } else { 30 }),
        };
        match cpscale::run(&cp_opts).await {
            Ok(r) => results.cp_scale.push(r),
            Err(e) => say(&format!("cp-scale {n}: {e:#}")),
        }
        write(&opts.out, &results)?;
    }
    write(&opts.out, &results)?;
    Ok(results)
}

/// A started topology and the probe on its processes.
pub(super) fn probe(running: &Running, backend: &Backend) -> Probe {
    Probe {
        proxies: running
            .proxies
            .iter()
            .map(|(r, p)| (r.clone(), p.pid))
            .collect(),
        server: backend.pid(),
        others: running.others.iter().map(|p| p.pid).collect(),
    }
}

/// Idle memory, every workload, then each memory scenario on a freshly
/// started topology (RSS rarely shrinks, so one scenario would otherwise
/// inherit the peak of the one before).
async fn measure_topology(
    ctx: &Ctx,
    opts: &Options,
    topology: Topology,
    backend: &Backend,
    plan: &[workloads::Workload],
    result: &mut TopologyResult,
) -> anyhow::Result<()> {
    let id = topology.id();
    let mut running = topology::start(topology, ctx, backend).await?;
    let p = probe(&running, backend);
    let mut memory = Memory::default();
    if !p.proxies.is_empty() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        memory.idle = p.rss();
    }
    for w in plan {
        say(&format!("{id}: {}", w.id));
        let name = format!("{id}-{}", w.id);
        let step = Step {
            name: &name,
            workload: w,
            duration: opts.duration,
            warmup: opts.warmup,
        };
        let run = measure::run(ctx, &running.lanes, &p, step).await;
        if let Some(e) = &run.first_error {
            say(&format!(
                "{id}: {}: {} errors, first: {e}",
                w.id, run.errors
            ));
        }
        for (max, now) in peak_slots(&mut memory.load_peak, &run.proxy_rss_peak) {
            *max = (*max).max(now);
        }
        result.runs.push(run);
    }
    check_alive(id, &mut running, result);
    running.stop().await;
    if p.proxies.is_empty() {
        return Ok(());
    }
    let hold = clamp_connections(opts.hold_connections);
    if hold > 0 {
        settle().await;
        let mut running = topology::start(topology, ctx, backend).await?;
        let p = probe(&running, backend);
        if let Some(addr) = running.lanes.http {
            say(&format!("{id}: holding {hold} connections (fresh start)"));
            match memory::held_connections(ctx, &format!("{id}-hold"), addr, hold, &p).await {
                Ok(h) => memory.connections = Some(h),
                Err(e) => say(&format!("{id}: held connections: {e:#}")),
            }
        }
        check_alive(id, &mut running, result);
        running.stop().await;
    }
    if opts.endpoints > 0 && topology == Topology::Weft {
        settle().await;
        let mut running = topology::start(topology, ctx, backend).await?;
        let p = probe(&running, backend);
        if let Some(pair) = running.weft.clone() {
            say(&format!(
                "{id}: {} simulated endpoints (fresh start)",
                opts.endpoints
            ));
            let duration = opts.duration.min(Duration::from_secs(5));
            match memory::many_endpoints(ctx, &pair, &running.lanes, &p, opts.endpoints, duration)
                .await
            {
                Ok(m) => memory.endpoints = Some(m),
                Err(e) => say(&format!("{id}: many endpoints: {e:#}")),
            }
        }
        check_alive(id, &mut running, result);
        running.stop().await;
    }
    result.memory = Some(memory);
    settle().await;
    Ok(())
}

/// Notes a proxy that died (a crash is a result too).
fn check_alive(id: &str, running: &mut Running, result: &mut TopologyResult) {
    for (role, p) in &mut running.proxies {
        if !p.is_running() {
            say(&format!("{id}: the {role} proxy exited: {}", p.log_tail()));
            result.note = Some(format!(
                "the {role} proxy exited during the run (see logs/{}.log)",
                p.name
            ));
        }
    }
}

/// Lets the kernel reap the last topology's sockets.
pub(super) async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Pairs each role's running maximum with a new sample, adding roles as seen.
fn peak_slots<'a>(
    peak: &'a mut Vec<crate::results::ProcRss>,
    sample: &[crate::results::ProcRss],
) -> Vec<(&'a mut u64, u64)> {
    for s in sample {
        if !peak.iter().any(|p| p.role == s.role) {
            peak.push(crate::results::ProcRss {
                role: s.role.clone(),
                bytes: 0,
            });
        }
    }
    peak.iter_mut()
        .filter_map(|p| {
            let now = sample.iter().find(|s| s.role == p.role)?.bytes;
            Some((&mut p.bytes, now))
        })
        .collect()
}

/// Held connections fit the open-file limit (each needs a descriptor in the
/// client and at least one in the caller proxy).
fn clamp_connections(wanted: usize) -> usize {
    match procfs::open_files_limit() {
        Some(limit) if (limit as usize) < wanted + 1_000 => {
            let n = (limit as usize).saturating_sub(1_000);
            say(&format!(
                "open-file limit {limit} is too low for {wanted} connections; holding {n} (raise `ulimit -n`)"
            ));
            n
        }
        _ => wanted,
    }
}

fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
}

/// Writes `results.json` and the report so far (a partial run is readable).
fn write(out: &std::path::Path, results: &Results) -> anyhow::Result<()> {
    let path = out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(results)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::report::write(out).map(|_| ())
}
