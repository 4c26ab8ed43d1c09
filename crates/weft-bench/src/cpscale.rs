//! `weft-bench cp-scale`: one real control plane, N simulated proxies.
//!
//! 1. Start `weft control-plane --store memory` and create the mesh.
//! 2. Connect N simulated proxies (`sim-I`, service `sim`, each with an
//!    outbound to service `target`) and wait until each has its first config.
//! 3. Control-plane RSS before and after: RSS per dataplane.
//! 4. **Add**: one more proxy, `target-1` of service `target`, connects; the
//!    time from just before its `Hello` until each simulated proxy has
//!    received (and acked) a config listing it.
//! 5. **Remove**: its stream ends; the time until each has a config without it.
//!
//! Every wait is bounded: a control plane that cannot keep up yields
//! partial counts (`registered`, `received` below `expected`), not a hang.

use std::{collections::HashSet, path::PathBuf, time::Duration};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    procfs, rest,
    results::{CpScale, Propagation},
    sim::{self, Event, Fleet, SimDataplane},
    stats::percentiles_ms,
    suite::{
        process::{Proc, Spawn, free_port},
        weftcli::{Capabilities, admin_token_path},
    },
};

const MARKER: &str = "target-1";

/// Options of one measurement.
#[derive(Debug, Clone)]
pub struct Options {
    pub weft: PathBuf,
    pub dataplanes: usize,
    pub cp_cpus: Option<String>,
    pub log_dir: PathBuf,
    pub token: String,
    /// Longest wait for every simulated proxy's first config.
    pub register_timeout: Duration,
    /// Longest wait for each change to reach every simulated proxy.
    pub change_timeout: Duration,
}

/// Longest wait for config pushes to stop after a step.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// A control plane started for the measurement (killed when dropped).
pub struct ControlPlane {
    pub proc: Proc,
    pub api: String,
    pub dp: String,
    /// The admin token, when the API wants one.
    pub token: Option<String>,
    pub caps: Capabilities,
}

/// Starts `weft control-plane --store memory` (with what this `weft` needs
/// for a plaintext, unauthenticated stream; files in `log_dir/NAME-files`)
/// and creates mesh `default`.
pub async fn start_control_plane(
    weft: &std::path::Path,
    name: &str,
    cpus: Option<&str>,
    log_dir: &std::path::Path,
) -> anyhow::Result<ControlPlane> {
    let caps = Capabilities::probe(weft)?;
    let files = log_dir.join(format!("{name}-files"));
    std::fs::create_dir_all(&files)?;
    let (api_port, dp_port) = (free_port(), free_port());
    let proc = Spawn::new(name, weft, log_dir)
        .args(["control-plane", "--store", "memory", "--api-addr"])
        .args([format!("127.0.0.1:{api_port}"), "--dp-addr".into()])
        .args([format!("127.0.0.1:{dp_port}")])
        .args(caps.control_plane_args(&files)?)
        .cpus(cpus)
        .env("RUST_LOG", "info")
        .start()?;
    let mut cp = ControlPlane {
        proc,
        api: format!("http://127.0.0.1:{api_port}"),
        dp: format!("http://127.0.0.1:{dp_port}"),
        token: None,
        caps,
    };
    rest::wait_ok(&format!("{}/healthz", cp.api), Duration::from_secs(20))
        .await
        .with_context(|| cp.proc.log_tail())?;
    if cp.caps.admin_token_file {
        let path = admin_token_path(&files);
        let token = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "the control plane wrote no admin token to {}",
                path.display()
            )
        })?;
        cp.token = Some(token.trim().to_owned());
    }
    rest::apply(
        &cp.api,
        cp.token.as_deref(),
        vec![json!({"type": "Mesh", "name": "default"})],
    )
    .await?;
    Ok(cp)
}

pub async fn run(opts: &Options) -> anyhow::Result<CpScale> {
    let n = opts.dataplanes;
    let cp = start_control_plane(
        &opts.weft,
        &format!("cp-scale-{n}"),
        opts.cp_cpus.as_deref(),
        &opts.log_dir,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = procfs::rss_bytes(cp.proc.pid)?;

    let connections = sim::connections_for(n);
    let channels = sim::connect(&cp.dp, connections).await?;
    let sims = (0..n)
        .map(|i| SimDataplane {
            name: format!("sim-{i}"),
            service: "sim".into(),
            inbound_port: 20_000 + (i % 40_000) as u16,
            outbound: Some((15_001, "target".into())),
        })
        .collect();
    let registration_start = Instant::now();
    let cpu_start = procfs::cpu_seconds(cp.proc.pid)?;
    let mut fleet = sim::start(&channels, sims, Some(MARKER.into()), &opts.token)?;
    let mut failed = HashSet::new();
    let first = wait_for(
        &mut fleet,
        n,
        &mut failed,
        registration_start,
        opts.register_timeout,
        |_| true,
    )
    .await;
    let registered = first.iter().filter(|t| t.is_some()).count();
    let registration_s = registration_start.elapsed().as_secs_f64();
    let registration_cpu_s = procfs::cpu_seconds(cp.proc.pid)? - cpu_start;
    settle(
        &mut fleet,
        &mut failed,
        Duration::from_secs(2),
        SETTLE_LIMIT,
    )
    .await;
    let rss_after = procfs::rss_bytes(cp.proc.pid)?;

    // Add: a proxy of `target` connects.
    let target_channel = sim::connect(&cp.dp, 1).await?;
    let target = SimDataplane {
        name: MARKER.into(),
        service: "target".into(),
        inbound_port: 15_002,
        outbound: None,
    };
    let cpu0 = procfs::cpu_seconds(cp.proc.pid)?;
    let t_add = Instant::now();
    let target_fleet = sim::start(&target_channel, vec![target], None, &opts.token)?;
    let added = wait_for(
        &mut fleet,
        n,
        &mut failed,
        t_add,
        opts.change_timeout,
        |marked| marked,
    )
    .await;
    let add = propagation(&added, t_add, n, procfs::cpu_seconds(cp.proc.pid)? - cpu0);
    settle(
        &mut fleet,
        &mut failed,
        Duration::from_secs(1),
        SETTLE_LIMIT,
    )
    .await;

    // Remove: its stream ends (the proxy vanished).
    let cpu1 = procfs::cpu_seconds(cp.proc.pid)?;
    let t_remove = Instant::now();
    drop(target_fleet);
    let removed = wait_for(
        &mut fleet,
        n,
        &mut failed,
        t_remove,
        opts.change_timeout,
        |marked| !marked,
    )
    .await;
    let remove = propagation(
        &removed,
        t_remove,
        n,
        procfs::cpu_seconds(cp.proc.pid)? - cpu1,
    );
    settle(
        &mut fleet,
        &mut failed,
        Duration::from_secs(1),
        SETTLE_LIMIT,
    )
    .await;

    let acked_in_status = acked_in_status(&cp.api, cp.token.as_deref()).await.ok();
    let rss_end = procfs::rss_bytes(cp.proc.pid)?;
    drop(fleet);
    Ok(CpScale {
        dataplanes: n,
        connections,
        registered,
        failed_streams: failed.len(),
        registration_s,
        registration_cp_cpu_s: registration_cpu_s,
        cp_rss_before_bytes: rss_before,
        cp_rss_after_bytes: rss_after.max(rss_end),
        rss_per_dataplane_bytes: rss_after.max(rss_end).saturating_sub(rss_before) as f64
            / registered.max(1) as f64,
        add,
        remove,
        acked_in_status,
        register_timeout_s: opts.register_timeout.as_secs_f64(),
        change_timeout_s: opts.change_timeout.as_secs_f64(),
    })
}

/// Waits until every one of `n` simulated proxies has received, at or after
/// `since`, a config for which `wanted(marked)` holds (or has failed); the
/// time each did.
async fn wait_for(
    fleet: &mut Fleet,
    n: usize,
    failed: &mut HashSet<usize>,
    since: Instant,
    timeout: Duration,
    wanted: impl Fn(bool) -> bool,
) -> Vec<Option<Instant>> {
    let mut got: Vec<Option<Instant>> = vec![None; n];
    let mut pending = n - failed.iter().filter(|&&s| s < n).count();
    let deadline = since + timeout;
    while pending > 0 {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, fleet.events.recv()).await else {
            break;
        };
        match event {
            Event::Config {
                sim, at, marked, ..
            } => {
                if sim < n
                    && at >= since
                    && got[sim].is_none()
                    && wanted(marked)
                    && !failed.contains(&sim)
                {
                    got[sim] = Some(at);
                    pending -= 1;
                }
            }
            Event::Ended { sim, error } => {
                if failed.insert(sim) {
                    if failed.len() == 1 {
                        eprintln!("cp-scale: a simulated proxy's stream ended: {error}");
                    }
                    if sim < n && got[sim].is_none() {
                        pending -= 1;
                    }
                }
            }
        }
    }
    got
}

/// Drains events until none came for `quiet` (at most `limit`).
async fn settle(fleet: &mut Fleet, failed: &mut HashSet<usize>, quiet: Duration, limit: Duration) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        match tokio::time::timeout(quiet, fleet.events.recv()).await {
            Ok(Some(Event::Ended { sim, .. })) => {
                failed.insert(sim);
            }
            Ok(Some(Event::Config { .. })) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

fn propagation(
    got: &[Option<Instant>],
    since: Instant,
    expected: usize,
    cp_cpu_s: f64,
) -> Propagation {
    let ms: Vec<f64> = got
        .iter()
        .flatten()
        .map(|t| t.saturating_duration_since(since).as_secs_f64() * 1e3)
        .collect();
    let received = ms.len();
    let (p50_ms, p99_ms, max_ms) = percentiles_ms(ms);
    Propagation {
        expected,
        received,
        p50_ms,
        p99_ms,
        max_ms,
        cp_cpu_s,
    }
}

/// How many dataplanes the control plane shows online with their last
/// config acked (`GET /status/dataplanes`).
async fn acked_in_status(api: &str, token: Option<&str>) -> anyhow::Result<usize> {
    let v = rest::get_json(&format!("{api}/status/dataplanes"), token).await?;
    let items = match &v {
        Value::Array(a) => a.clone(),
        other => other["items"].as_array().cloned().unwrap_or_default(),
    };
    Ok(items
        .iter()
        .filter(|s| {
            s["online"] == Value::Bool(true)
                && !s["configVersionAcked"].is_null()
                && s["configVersionAcked"] == s["configVersionSent"]
        })
        .count())
}
