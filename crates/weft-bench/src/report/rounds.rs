//! The targets are read from workloads that run in several paired rounds
//! (`weft-bench suite --rounds N`, see `suite::paired`): every round
//! measures the compared topologies back to back, so the verdict rests on
//! the median of the rounds rather than on one moment of a shared machine.

use crate::results::{Results, Run};

/// `f` of each round in which every topology of `ids` measured `workload`
/// (their runs in `ids` order), round 1 first. Rounds that one of them
/// missed are left out, so values always compare runs of the same round.
pub fn per_round(
    results: &Results,
    workload: &str,
    ids: &[&str],
    f: impl Fn(&[&Run]) -> Option<f64>,
) -> Vec<f64> {
    let lists: Option<Vec<Vec<Option<&Run>>>> = ids
        .iter()
        .map(|id| {
            results
                .topologies
                .iter()
                .find(|t| t.id == *id && t.available)
                .map(|t| t.rounds(workload))
        })
        .collect();
    let Some(lists) = lists else {
        return Vec::new();
    };
    let rounds = lists.iter().map(Vec::len).min().unwrap_or(0);
    (0..rounds)
        .filter_map(|round| {
            let runs: Option<Vec<&Run>> = lists.iter().map(|list| list[round]).collect();
            f(&runs?)
        })
        .collect()
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The median, and the median as `format` writes it followed by every
/// round's value when there was more than one round.
pub fn describe(values: &[f64], format: impl Fn(f64) -> String) -> Option<(f64, String)> {
    let middle = median(values)?;
    if values.len() == 1 {
        return Some((middle, format(middle)));
    }
    let each: Vec<String> = values.iter().map(|&v| format(v)).collect();
    let text = format!(
        "{} (median of {} rounds: {})",
        format(middle),
        values.len(),
        each.join(", ")
    );
    Some((middle, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::tests::{run, topology};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn rounds_pair_runs_of_the_same_round_and_skip_gaps() {
        let mut direct = topology("direct", vec![run("w", true, 100.0, 0.0, 1.0, None)]);
        let mut weft = topology("weft", vec![run("w", true, 150.0, 0.0, 1.0, None)]);
        let main_pass = Results {
            topologies: vec![direct.clone(), weft.clone()],
            ..Default::default()
        };
        let added = |results: &Results| {
            per_round(results, "w", &["direct", "weft"], |r| {
                Some(r[1].latency?.p50_us - r[0].latency?.p50_us)
            })
        };
        assert_eq!(added(&main_pass), vec![50.0]);
        direct.repeats = vec![
            run("w", true, 110.0, 0.0, 1.0, None),
            run("w", true, 120.0, 0.0, 1.0, None),
            run("w", true, 130.0, 0.0, 1.0, None),
        ];
        let mut failed = run("w", true, 0.0, 0.0, 1.0, None);
        failed.skipped = Some("could not start".into());
        weft.repeats = vec![
            failed,
            run("w", true, 200.0, 0.0, 1.0, None),
            run("w", true, 180.0, 0.0, 1.0, None),
        ];
        let paired = Results {
            topologies: vec![direct, weft],
            ..Default::default()
        };
        // The paired rounds replace the main pass; the failed round is a gap.
        let values = added(&paired);
        assert_eq!(values, vec![80.0, 50.0]);
        assert!(per_round(&paired, "w", &["direct", "nginx"], |_| Some(1.0)).is_empty());
        assert_eq!(
            describe(&values, |v| format!("{v:+.0}")).unwrap(),
            (65.0, "+65 (median of 2 rounds: +80, +50)".to_owned())
        );
        assert_eq!(
            describe(&[7.0], |v| format!("{v}")).unwrap(),
            (7.0, "7".to_owned())
        );
    }
}
