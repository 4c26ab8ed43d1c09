//! `weft check`: diagnoses a mesh from the control plane's point of view,
//! one PASS/WARN/FAIL line per check with a hint under each problem, and
//! exits 1 when a check fails. `weft check transparent-proxy` checks this
//! host's iptables rules instead.

mod evaluate;
mod facts;

use std::time::Duration;

use clap::{Args, ValueEnum};

use self::evaluate::{Check, Outcome, Settings};
use crate::cli::CpArgs;

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum CheckOutput {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub host: Option<crate::commands::transparent_proxy::CheckCommand>,
    /// Check only this mesh [default: every mesh].
    #[arg(short, long)]
    pub mesh: Option<String>,
    /// Fail workload certificates expiring within this, e.g. `2h` [default:
    /// within the last 20 % of their lifetime].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub cert_warn: Option<Duration>,
    /// Fail clocks further apart than this.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub max_clock_skew: Duration,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: CheckOutput,
    #[command(flatten)]
    pub cp: CpArgs,
}

/// CA certificates expiring within this warn.
const CA_WARN: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    if let Some(host) = args.host {
        return crate::commands::transparent_proxy::check(host);
    }
    let client = args.cp.client()?;
    let facts = facts::gather(&client, args.mesh.as_deref()).await;
    let settings = Settings {
        cert_warn: args.cert_warn,
        max_clock_skew: args.max_clock_skew,
        ca_warn: CA_WARN,
    };
    let checks = evaluate::evaluate(&facts, &settings, facts::now_unix_ms());
    let failed = checks.iter().filter(|c| c.status == Outcome::Fail).count();
    match args.output {
        CheckOutput::Text => print!("{}", render(&checks)),
        CheckOutput::Json => {
            let report = serde_json::json!({ "ok": failed == 0, "checks": checks });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

/// `PASS  name: summary`, then per problem its subject and detail, and the hint.
fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        out.push_str(&format!(
            "{:<5} {}: {}\n",
            label(check.status),
            check.name,
            check.summary
        ));
        for p in &check.problems {
            out.push_str(&format!(
                "      {} {}: {}\n        hint: {}\n",
                label(p.status),
                p.subject,
                p.detail,
                p.hint
            ));
        }
    }
    out
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Warn => "WARN",
        Outcome::Fail => "FAIL",
    }
}
