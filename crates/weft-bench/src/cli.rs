//! Command line of `weft-bench`: parses arguments and dispatches.

use std::{
    collections::HashSet, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    clients::{self, Load},
    cpscale, report, server,
    sim::{self, Event, SimDataplane},
    suite,
};

#[derive(Debug, Parser)]
#[command(
    name = "weft-bench",
    about = "Weft's benchmark harness (run it through bench/run)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every topology and workload and write results.json, summary.md and summary.json.
    Suite(SuiteArgs),
    /// Rewrite summary.md and summary.json from a run directory's results.json.
    Report { dir: PathBuf },
    /// A relay that only copies bytes from LISTEN to UPSTREAM: two in a row
    /// are the floor any proxy pair pays here (bench/README.md).
    Relay {
        listen: SocketAddr,
        upstream: SocketAddr,
    },
    /// The backend server every topology shares.
    Server {
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        grpc: SocketAddr,
        #[arg(long)]
        tcp: SocketAddr,
    },
    /// A load client oha cannot replace; prints one JSON result.
    Load(LoadArgs),
    /// Open N keep-alive connections and hold them until stdin closes.
    Hold {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        connections: usize,
    },
    /// Register N simulated proxies of one service and hold them until stdin closes.
    Simulate {
        /// The control plane's data-plane URL.
        #[arg(long)]
        cp: String,
        #[arg(long)]
        dataplanes: usize,
        #[arg(long)]
        service: String,
        /// Inbound port every simulated dataplane declares (the real proxy's, for live endpoints).
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "sim-ep")]
        prefix: String,
        #[arg(long, default_value = "")]
        token: String,
    },
    /// N simulated proxies on one control plane: memory and config propagation.
    CpScale {
        #[arg(long)]
        dataplanes: usize,
        /// The weft binary [default: `weft` beside this binary].
        #[arg(long)]
        weft: Option<PathBuf>,
        /// Pin the control plane with `taskset -c`.
        #[arg(long)]
        cp_cpus: Option<String>,
        #[arg(long, default_value = "target/bench/cp-scale-logs")]
        log_dir: PathBuf,
        #[arg(long, default_value = "")]
        token: String,
        /// Longest wait for every simulated proxy's first config.
        #[arg(long, default_value_t = 300)]
        register_timeout_s: u64,
        /// Longest wait for each change to reach every simulated proxy.
        #[arg(long, default_value_t = 120)]
        change_timeout_s: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// The quick mode: fewer workloads, shorter runs, smaller scale tests.
    #[arg(long)]
    pub quick: bool,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub weft: PathBuf,
    /// The executable the Weft proxies run as [default: `weft-proxy` beside
    /// `--weft` when it exists, else `weft proxy`].
    #[arg(long)]
    pub weft_proxy: Option<PathBuf>,
    #[arg(long, default_value = "oha")]
    pub oha: PathBuf,
    /// The repository (for the commit in the report).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Comma-separated topology ids (direct, weft, weft-mtls, haproxy, haproxy-tls, nginx).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Comma-separated workload ids.
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    #[arg(long, value_parser = seconds)]
    pub duration_s: Option<f64>,
    #[arg(long, value_parser = seconds)]
    pub warmup_s: Option<f64>,
    #[arg(long)]
    pub hold_connections: Option<usize>,
    #[arg(long)]
    pub endpoints: Option<usize>,
    /// Comma-separated control-plane scale sizes (0 skips).
    #[arg(long, value_delimiter = ',')]
    pub cp_scale: Vec<usize>,
    /// Paired rounds of the workloads the latency and CPU targets are read
    /// from, after the main pass: the compared topologies run side by side
    /// and are measured back to back, and the verdicts take the median of
    /// the rounds (0: the main pass) [default: 9, quick: 0].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=30))]
    pub rounds: Option<u32>,
    /// How long each paired round measures each workload, after a warm-up
    /// of a quarter of that: short rounds pair closer in time, and more of
    /// them make the median steadier.
    #[arg(long, value_parser = seconds, default_value = "2")]
    pub round_duration_s: f64,
}

/// A positive, finite number of seconds (a duration the suite can sleep).
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(s),
        Ok(_) => Err(format!("{text} is not between 0 and 3600 seconds")),
        Err(_) => Err(format!("{text} is not a number of seconds")),
    }
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// `grpc`, `churn` or `stream`.
    pub kind: String,
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub duration_ms: u64,
    /// Open loop at this rate per second (latency from the intended send time).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop with this many workers (stream: connections).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// gRPC: HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // Children are killed on drop; do not wait for stray tasks.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Relay { listen, upstream } => {
            // On a single-threaded runtime of its own, like the Weft proxies.
            tokio::task::spawn_blocking(move || crate::relay::run(listen, upstream)).await?
        }
        Command::Suite(args) => run_suite(args).await,
        Command::Report { dir } => {
            report::write(&dir)?;
            println!("{}", dir.join("summary.md").display());
            Ok(())
        }
        Command::Server { http, grpc, tcp } => server::run(http, grpc, tcp).await,
        Command::Load(args) => run_load(args).await,
        Command::Hold { addr, connections } => clients::hold::run(addr, connections).await,
        Command::Simulate {
            cp,
            dataplanes,
            service,
            port,
            prefix,
            token,
        } => simulate(&cp, dataplanes, &service, port, &prefix, &token).await,
        Command::CpScale {
            dataplanes,
            weft,
            cp_cpus,
            log_dir,
            token,
            register_timeout_s,
            change_timeout_s,
        } => {
            let weft = match weft {
                Some(w) => w,
                None => std::env::current_exe()?.with_file_name("weft"),
            };
            let opts = cpscale::Options {
                weft,
                dataplanes,
                cp_cpus,
                log_dir,
                token,
                register_timeout: Duration::from_secs(register_timeout_s),
                change_timeout: Duration::from_secs(change_timeout_s),
            };
            let result = cpscale::run(&opts).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
    }
}

async fn run_suite(a: SuiteArgs) -> anyhow::Result<()> {
    let (duration, warmup, hold, endpoints, scale) = if a.quick {
        (2.0, 0.5, 2_000, 200, vec![1_000])
    } else {
        (6.0, 1.0, 10_000, 1_000, vec![1_000, 10_000])
    };
    let opts = suite::Options {
        quick: a.quick,
        out: a.out.clone(),
        repo: a.repo,
        proxy: suite::ProxyExe::choose(a.weft_proxy, &a.weft),
        weft: a.weft,
        oha: a.oha,
        me: std::env::current_exe().context("cannot find this binary")?,
        pin: !a.no_pin,
        only: a.only,
        workloads: a.workloads,
        duration: Duration::from_secs_f64(a.duration_s.unwrap_or(duration)),
        warmup: Duration::from_secs_f64(a.warmup_s.unwrap_or(warmup)),
        hold_connections: a.hold_connections.unwrap_or(hold),
        endpoints: a.endpoints.unwrap_or(endpoints),
        disturbance_budget: Duration::from_secs(if a.quick { 30 } else { 120 }),
        rounds: a.rounds.unwrap_or(if a.quick { 0 } else { 9 }) as usize,
        round_duration: Duration::from_secs_f64(a.round_duration_s),
        cp_scale: if a.cp_scale.is_empty() {
            scale
        } else {
            a.cp_scale.into_iter().filter(|&n| n > 0).collect()
        },
    };
    suite::run(&opts).await?;
    report::write(&a.out)?;
    eprintln!("[weft-bench] wrote {}", a.out.join("summary.md").display());
    Ok(())
}

async fn run_load(a: LoadArgs) -> anyhow::Result<()> {
    let duration = Duration::from_millis(a.duration_ms);
    let load = Load::from_args(a.rate, a.concurrency);
    let result = match a.kind.as_str() {
        "grpc" => clients::grpc::run(a.addr, load, duration, a.connections).await?,
        "churn" => clients::churn::run(a.addr, load, duration).await?,
        "stream" => clients::stream::run(a.addr, a.concurrency, duration).await?,
        other => anyhow::bail!("unknown load kind {other:?} (grpc, churn, stream)"),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

async fn simulate(
    cp: &str,
    n: usize,
    service: &str,
    port: u16,
    prefix: &str,
    token: &str,
) -> anyhow::Result<()> {
    let channels = sim::connect(cp, sim::connections_for(n)).await?;
    let dataplanes = (0..n)
        .map(|i| SimDataplane {
            name: format!("{prefix}-{i}"),
            service: service.into(),
            inbound_port: port,
            outbound: None,
        })
        .collect();
    let mut fleet = sim::start(&channels, dataplanes, None, token)?;
    let (mut ready, mut failed) = (HashSet::new(), HashSet::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while ready.len() + failed.len() < n {
        match tokio::time::timeout_at(deadline, fleet.events.recv()).await {
            Ok(Some(Event::Config { sim, .. })) => {
                ready.insert(sim);
            }
            Ok(Some(Event::Ended { sim, error })) => {
                if failed.insert(sim) && failed.len() == 1 {
                    eprintln!("simulate: a stream ended: {error}");
                }
            }
            _ => break,
        }
    }
    println!("ready {} {}", ready.len(), failed.len());
    // Keep acking until stdin closes; drain events meanwhile.
    let closed = clients::hold::stdin_closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            e = fleet.events.recv() => if e.is_none() { break },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn seconds_are_positive_finite_numbers() {
        assert_eq!(seconds("2"), Ok(2.0));
        assert_eq!(seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1e9"] {
            let error = seconds(bad).unwrap_err();
            assert!(error.contains("between 0 and 3600"), "{bad}: {error}");
        }
        assert!(seconds("two").unwrap_err().contains("not a number"));
    }
}
