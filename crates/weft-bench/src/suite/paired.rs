//! The paired rounds the latency and CPU targets are read from.
//!
//! This VM's speed drifts by up to 2× over minutes, unseen by steal time:
//! the main pass measures `direct` and `weft-mtls` minutes apart, so their
//! difference moves with the machine as much as with the proxies. Here
//! every topology a round-based target compares is started once and kept
//! up, and each round measures their target workloads back to back, so
//! the two sides of a comparison run seconds apart. Every other round runs
//! in reverse order, so a steady drift favours neither side. Idle
//! topologies cost next to nothing while another is measured. Rounds are
//! short (2 s by default) and many (9): the closer in time the two sides
//! of a pair, the less the machine moves between them, and the median of
//! more pairs is steadier.

use std::time::Duration;

use super::{
    backend::Backend,
    measure::{self, Probe, Step},
    run::{Options, probe, say, settle},
    topology::{self, Running, Topology},
    workloads::Workload,
};
use crate::{
    report::targets::ROUND_PLAN,
    results::{Results, Run},
};

/// One comparison slot: a topology and the target workload it runs.
#[derive(Clone, Copy)]
struct Entry<'a> {
    topology: Topology,
    workload: &'a Workload,
}

/// A topology kept up for the rounds, or why it could not start.
type Started = Result<(Running, Probe), String>;

/// Runs `opts.rounds` paired rounds, appending each run to its topology's
/// `repeats` (a topology that cannot start gets a skipped run per round,
/// so rounds stay aligned across topologies).
pub async fn run(
    ctx: &topology::Ctx,
    opts: &Options,
    backend: &Backend,
    plan: &[Workload],
    results: &mut Results,
) {
    let entries = entries(plan, results);
    if opts.rounds == 0 || entries.is_empty() {
        return;
    }
    let mut started: Vec<(Topology, Started)> = Vec::new();
    for entry in &entries {
        if started.iter().any(|(t, _)| *t == entry.topology) {
            continue;
        }
        settle().await;
        say(&format!(
            "{}: starting for the paired rounds",
            entry.topology.id()
        ));
        let up = match topology::start(entry.topology, ctx, backend).await {
            Ok(running) => {
                let p = probe(&running, backend);
                Ok((running, p))
            }
            Err(e) => {
                say(&format!("{}: cannot start: {e:#}", entry.topology.id()));
                Err(format!("cannot start: {e:#}"))
            }
        };
        started.push((entry.topology, up));
    }
    for round in 1..=opts.rounds {
        for entry in in_order(&entries, round) {
            let Some((_, up)) = started.iter().find(|(t, _)| *t == entry.topology) else {
                continue;
            };
            let name = format!(
                "{}-{}-paired{round}",
                entry.topology.id(),
                entry.workload.id
            );
            let run = match up {
                Ok((running, p)) => {
                    say(&format!("paired round {round}: {name}"));
                    let step = Step {
                        name: &name,
                        workload: entry.workload,
                        duration: opts.round_duration,
                        warmup: round_warmup(opts.round_duration),
                    };
                    measure::run(ctx, &running.lanes, p, step).await
                }
                Err(why) => Run {
                    workload: entry.workload.id.into(),
                    skipped: Some(format!("paired round {round}: {why}")),
                    ..Run::default()
                },
            };
            if let Some(result) = results
                .topologies
                .iter_mut()
                .find(|t| t.id == entry.topology.id())
            {
                result.repeats.push(run);
            }
        }
    }
    for (_, up) in started {
        if let Ok((running, _)) = up {
            running.stop().await;
        }
    }
}

/// A round's warm-up: its topologies are up and warm already, so this only
/// lets the client's connections open and the rate settle.
fn round_warmup(duration: Duration) -> Duration {
    duration / 4
}

/// The round plan's slots whose topology and workload ran in the main pass.
fn entries<'a>(plan: &'a [Workload], results: &Results) -> Vec<Entry<'a>> {
    ROUND_PLAN
        .iter()
        .filter_map(|&(id, workload)| {
            let topology = Topology::from_id(id)?;
            let result = results
                .topologies
                .iter()
                .find(|t| t.id == id && t.available)?;
            result.run(workload)?;
            let workload = plan.iter().find(|w| w.id == workload)?;
            Some(Entry { topology, workload })
        })
        .collect()
}

/// The round's order: the plan's on odd rounds, reversed on even ones.
fn in_order<'a>(entries: &[Entry<'a>], round: usize) -> Vec<Entry<'a>> {
    let mut order = entries.to_vec();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{results::TopologyResult, suite::workloads};

    fn ran(id: &str, workloads: &[&str]) -> TopologyResult {
        TopologyResult {
            id: id.into(),
            available: true,
            runs: workloads
                .iter()
                .map(|w| Run {
                    workload: (*w).into(),
                    ..Run::default()
                })
                .collect(),
            ..TopologyResult::default()
        }
    }

    #[test]
    fn slots_follow_the_round_plan_and_skip_what_did_not_run() {
        let plan = workloads::plan(false);
        let mut haproxy_tls = ran("haproxy-tls", &["http1-1k"]);
        haproxy_tls.available = false;
        let results = Results {
            topologies: vec![
                ran("direct", &["http1-1k", "http1-max"]),
                ran("weft-mtls", &["http1-1k"]),
                haproxy_tls,
                ran("weft", &["http1-max"]),
                ran("nginx", &["http1-1k"]),
            ],
            ..Results::default()
        };
        let ids: Vec<_> = entries(&plan, &results)
            .iter()
            .map(|e| (e.topology.id(), e.workload.id))
            .collect();
        assert_eq!(
            ids,
            [
                ("direct", "http1-1k"),
                ("weft-mtls", "http1-1k"),
                ("weft", "http1-max")
            ]
        );
    }

    #[test]
    fn even_rounds_run_in_reverse() {
        let plan = workloads::plan(false);
        let results = Results {
            topologies: vec![
                ran("direct", &["http1-1k"]),
                ran("weft-mtls", &["http1-1k"]),
            ],
            ..Results::default()
        };
        let all = entries(&plan, &results);
        let ids = |round| -> Vec<&str> {
            in_order(&all, round)
                .iter()
                .map(|e| e.topology.id())
                .collect()
        };
        assert_eq!(ids(1), ["direct", "weft-mtls"]);
        assert_eq!(ids(2), ["weft-mtls", "direct"]);
        assert_eq!(ids(3), ["direct", "weft-mtls"]);
    }
}
