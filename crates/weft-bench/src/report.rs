//! The report of a run: ratios to direct and to the HAProxy pair, the
//! issue's targets next to the numbers, as `summary.md` and `summary.json`
//! beside `results.json`. (`bench/plot.py` draws `latency.png`.)

pub mod compare;
pub mod markdown;
pub mod rounds;
pub mod targets;

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::results::{CpScale, Machine, Results, Settings};

pub use compare::{LatencyRow, MemoryRow, ThroughputRow};
pub use targets::Target;

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub machine: Machine,
    pub settings: Settings,
    pub targets: Vec<Target>,
    pub latency: Vec<LatencyRow>,
    pub throughput: Vec<ThroughputRow>,
    pub memory: Vec<MemoryRow>,
    pub cp_scale: Vec<CpScale>,
    /// (topology, why) for topologies that did not run.
    pub unavailable: Vec<(String, String)>,
}

pub fn summarize(results: &Results) -> Summary {
    Summary {
        machine: results.machine.clone(),
        settings: results.settings.clone(),
        targets: targets::evaluate(results),
        latency: compare::latency(results),
        throughput: compare::throughput(results),
        memory: compare::memory(results),
        cp_scale: results.cp_scale.clone(),
        unavailable: results
            .topologies
            .iter()
            .filter(|t| !t.available)
            .map(|t| (t.id.clone(), t.note.clone().unwrap_or_default()))
            .collect(),
    }
}

/// Reads `results.json` in `dir` and writes `summary.md` and `summary.json`.
pub fn write(dir: &Path) -> anyhow::Result<Summary> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let results: Results = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a results file", path.display()))?;
    let summary = summarize(&results);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    std::fs::write(dir.join("summary.md"), markdown::render(&summary))?;
    Ok(summary)
}
