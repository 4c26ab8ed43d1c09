//! `summary.md`: the targets first, then one table per kind of result.

use std::fmt::Write as _;

use super::{Summary, targets::Verdict};

fn us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn signed_us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| {
        if v.abs() >= 100.0 {
            format!("{v:+.0}")
        } else {
            format!("{v:+.1}")
        }
    })
}

fn x(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}×"))
}

fn mb(v: Option<u64>) -> String {
    v.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1e6))
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// " of 2.0 s per workload" (nothing for results written
/// before rounds had their own length).
fn round_length(seconds: f64) -> String {
    if seconds > 0.0 {
        format!(" of {seconds:.1} s per workload")
    } else {
        String::new()
    }
}

pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let m = &s.machine;
    let _ = writeln!(o, "# Weft benchmark ({} run)\n", s.settings.mode);
    let _ = writeln!(
        o,
        "{} · {} CPUs ({}) · {:.1} GiB · kernel {} · weft {}\n",
        m.date, m.nproc, m.cpu_model, m.memory_gib, m.kernel, m.weft_commit
    );
    let _ = writeln!(
        o,
        "Each measurement: {:.1} s after a {:.1} s warm-up. Pinning: {}. \
         Latency is end to end as the client sees it, in µs; open-loop runs are \
         corrected for coordinated omission. MB = 10^6 bytes. \
         \"other CPU\" is CPU used during the run by processes outside the benchmark \
         (steal included), in % of one core; a run above 20 % is repeated up to twice \
         and the least disturbed attempt kept.\n",
        s.settings.duration_s, s.settings.warmup_s, s.settings.pinning
    );
    if !s.settings.proxy_executable.is_empty() {
        let _ = writeln!(
            o,
            "Weft proxies run as `{}`.\n",
            s.settings.proxy_executable
        );
    }
    if s.settings.rounds > 0 {
        let _ = writeln!(
            o,
            "The latency and CPU targets take the median of {} paired rounds{}: after \
             the main pass, the topologies they compare run side by side, and each \
             round measures their target workloads back to back (in reverse every \
             other round), so both sides of a comparison see the same machine. The \
             tables below show the main pass.\n",
            s.settings.rounds,
            round_length(s.settings.round_duration_s)
        );
    }
    for (k, v) in &m.versions {
        let _ = writeln!(o, "* {k}: {v}");
    }

    let _ = writeln!(
        o,
        "\n## Targets\n\n| target | measured | verdict |\n| --- | --- | --- |"
    );
    for t in &s.targets {
        let verdict = match t.verdict {
            Verdict::Met => "**met**",
            Verdict::Missed => "**missed**",
            Verdict::NotMeasured => "not measured",
        };
        let _ = writeln!(o, "| {} | {} | {verdict} |", t.target, t.measured);
    }

    let _ = writeln!(
        o,
        "\n## Latency, open loop\n\nAdded = topology − direct at the same percentile; × = ratio.\n"
    );
    let mut workload = "";
    for r in &s.latency {
        if r.workload != workload {
            workload = &r.workload;
            let _ = writeln!(
                o,
                "\n### {workload} ({})\n\n| topology | p50 | p99 | p99.9 | added p50 | added p99 | p50 × direct | p99 × direct | p99.9 × direct | p50 × HAProxy | p99 × HAProxy | achieved req/s | errors | other CPU |\n\
                 | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                r.load
            );
        }
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {:.0}% |",
            r.topology,
            us(r.p50_us),
            us(r.p99_us),
            us(r.p999_us),
            signed_us(r.added_p50_us),
            signed_us(r.added_p99_us),
            x(r.p50_vs_direct),
            x(r.p99_vs_direct),
            x(r.p999_vs_direct),
            x(r.p50_vs_haproxy),
            x(r.p99_vs_haproxy),
            r.achieved_rate,
            r.errors,
            r.other_cpu_share * 100.0
        );
    }

    let _ = writeln!(
        o,
        "\n## Throughput, closed loop\n\nPer proxy CPU-second: work done divided by the CPU time \
         (user + system, from /proc) of both proxies of the pair.\n"
    );
    let mut workload = "";
    for r in &s.throughput {
        if r.workload != workload {
            workload = &r.workload;
            let _ = writeln!(
                o,
                "\n### {workload} ({})\n\n| topology | {} | × direct | × HAProxy | proxy CPU s | per proxy CPU-s | per CPU-s × HAProxy | p50 µs | p99 µs | errors | other CPU |\n\
                 | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                r.load, r.unit
            );
        }
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% |",
            r.topology,
            num(r.rate),
            x(r.vs_direct),
            x(r.vs_haproxy),
            r.proxy_cpu_s.map_or("–".into(), |c| format!("{c:.2}")),
            r.per_proxy_cpu_s.map_or("–".into(), num),
            x(r.per_proxy_cpu_s_vs_haproxy),
            r.p50_us.map_or("–".into(), us),
            r.p99_us.map_or("–".into(), us),
            r.errors,
            r.other_cpu_share * 100.0
        );
    }

    let _ = writeln!(
        o,
        "\n## Proxy memory (RSS, MB)\n\n| topology | proxy | idle | peak under load | with held connections | with simulated endpoints |\n\
         | --- | --- | ---: | ---: | ---: | ---: |"
    );
    for r in &s.memory {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            r.topology,
            r.role,
            mb(r.idle),
            mb(r.load_peak),
            r.connections.map_or("–".into(), |(n, b, sockets)| format!(
                "{} ({n} held; {sockets} sockets open)",
                mb(Some(b))
            )),
            r.endpoints.map_or("–".into(), |(n, b)| format!(
                "{} ({n} endpoints)",
                mb(Some(b))
            )),
        );
    }

    if !s.cp_scale.is_empty() {
        let _ = writeln!(
            o,
            "\n## Control plane scale\n\nN simulated proxies on one control plane (memory store). \
             Add: a new proxy of a service all of them call connects; remove: it disconnects. \
             Times are until each simulated proxy received (and acked) the new config. \
             Waits are bounded (registration, then each change): \"X of N\" below N means \
             the rest had not arrived when the bound ran out.\n\n\
             | dataplanes | registered | HTTP/2 conns | registration s | CP RSS MB | per dataplane KB | add p50 / p99 / max ms | remove p50 / p99 / max ms | CP CPU s (add) | acked per status |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for c in &s.cp_scale {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.0} / {:.0} / {:.0} ({} of {}) | {:.0} / {:.0} / {:.0} ({} of {}) | {:.2} | {} |",
                c.dataplanes,
                c.registered,
                c.connections,
                c.registration_s,
                c.cp_rss_after_bytes as f64 / 1e6,
                c.rss_per_dataplane_bytes / 1e3,
                c.add.p50_ms,
                c.add.p99_ms,
                c.add.max_ms,
                c.add.received,
                c.add.expected,
                c.remove.p50_ms,
                c.remove.p99_ms,
                c.remove.max_ms,
                c.remove.received,
                c.remove.expected,
                c.add.cp_cpu_s,
                c.acked_in_status.map_or("–".into(), |n| n.to_string()),
            );
        }
    }

    if !s.unavailable.is_empty() {
        let _ = writeln!(o, "\n## Not run\n");
        for (id, why) in &s.unavailable {
            let _ = writeln!(o, "* **{id}**: {why}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use crate::report::{compare::tests::sample, summarize};

    #[test]
    fn renders_every_section() {
        let md = super::render(&summarize(&sample()));
        assert!(md.contains("## Targets"));
        assert!(
            md.contains("| weft | 180 | 400 | 800 | +80.0 | +200 | 1.80× | 2.00×"),
            "{md}"
        );
        assert!(md.contains("### http1-max"));
        assert!(md.contains("* **nginx**: not available yet"));
    }
}
