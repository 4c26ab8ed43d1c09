//! Running oha (from crates.io) and reading its JSON output. Open-loop runs
//! use `-q RATE --latency-correction`: oha then charges each request from
//! the time its rate limiter released it, not from when a connection was
//! free, so a stall is not hidden (coordinated omission).

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::Context;
use serde_json::Value;

use super::workloads::{Client, Workload};
use crate::{clients::Load, load::LoadResult, stats::LatencySummary};

/// HTTP/1.1 connections of open-loop runs.
const OPEN_CONNECTIONS: usize = 16;
/// HTTP/2 connections; streams per connection are the rest of the concurrency.
const H2_CONNECTIONS: usize = 4;

/// oha's arguments for `workload` against `addr`.
pub fn args(
    addr: SocketAddr,
    workload: &Workload,
    duration: Duration,
    body_file: &Path,
    threads: Option<usize>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "-z".into(),
        format!("{}ms", duration.as_millis()),
        "-w".into(),
    ];
    if let Some(t) = threads {
        a.extend(["--worker-threads".into(), t.to_string()]);
    }
    let http2 = matches!(workload.client, Client::Oha { http2: true });
    let concurrency = match workload.load {
        Load::Open(rate) => {
            a.extend([
                "-q".into(),
                format!("{rate}"),
                "--latency-correction".into(),
            ]);
            OPEN_CONNECTIONS
        }
        Load::Closed(n) => n,
    };
    if http2 {
        let per_conn = concurrency.div_ceil(H2_CONNECTIONS).max(1);
        a.extend([
            "--http2".into(),
            "-c".into(),
            H2_CONNECTIONS.to_string(),
            "-p".into(),
            per_conn.to_string(),
        ]);
    } else {
        a.extend(["-c".into(), concurrency.to_string()]);
    }
    if workload.client == Client::OhaBody {
        a.extend([
            "-m".into(),
            "POST".into(),
            "-D".into(),
            body_file.display().to_string(),
            "-T".into(),
            "application/octet-stream".into(),
        ]);
        a.push(format!("http://{addr}/echo"));
    } else {
        a.push(format!("http://{addr}/"));
    }
    a
}

/// Reads oha's JSON. Successes are 200 responses; errors are other
/// statuses and transport errors, except requests cut by the deadline.
pub fn parse(json: &str) -> anyhow::Result<LoadResult> {
    let v: Value = serde_json::from_str(json).context("oha did not print JSON")?;
    let duration_s = v["summary"]["total"].as_f64().context("no summary.total")?;
    let mut ok = 0;
    let mut errors = 0;
    let mut first_error = None;
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code == "200" {
                ok += n;
            } else {
                errors += n;
                first_error.get_or_insert_with(|| format!("status {code}"));
            }
        }
    }
    if let Some(errs) = v["errorDistribution"].as_object() {
        for (msg, n) in errs {
            if msg.contains("deadline") {
                continue;
            }
            errors += n.as_u64().unwrap_or(0);
            first_error.get_or_insert_with(|| msg.clone());
        }
    }
    let p = &v["latencyPercentiles"];
    let us = |x: &Value| x.as_f64().unwrap_or(0.0) * 1e6;
    let latency = (ok > 0).then(|| LatencySummary {
        count: ok,
        mean_us: us(&v["summary"]["average"]),
        p50_us: us(&p["p50"]),
        p99_us: us(&p["p99"]),
        p999_us: us(&p["p99.9"]),
        max_us: us(&v["summary"]["slowest"]),
    });
    let bytes = v["summary"]["totalData"].as_u64().unwrap_or(0);
    Ok(LoadResult {
        ok,
        errors,
        first_error,
        duration_s,
        rate: ok as f64 / duration_s.max(1e-9),
        bytes,
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::workloads::find;

    #[test]
    fn open_loop_args_correct_latency() {
        let w = find("http1-1k").unwrap();
        let a = args(
            ([127, 0, 0, 1], 8080).into(),
            &w,
            Duration::from_secs(8),
            Path::new("/b"),
            Some(1),
        );
        let s = a.join(" ");
        assert!(s.contains("-q 1000 --latency-correction -c 16"), "{s}");
        assert!(s.contains("-z 8000ms"));
        assert!(s.contains("--worker-threads 1"));
        assert!(s.ends_with("http://127.0.0.1:8080/"));
    }

    #[test]
    fn http2_and_body_args() {
        let h2 = args(
            ([127, 0, 0, 1], 1).into(),
            &find("h2-max").unwrap(),
            Duration::from_secs(1),
            Path::new("/b"),
            None,
        );
        assert!(h2.join(" ").contains("--http2 -c 4 -p 16"));
        let body = args(
            ([127, 0, 0, 1], 1).into(),
            &find("body-1mib").unwrap(),
            Duration::from_secs(1),
            Path::new("/b"),
            None,
        );
        let s = body.join(" ");
        assert!(s.contains("-c 4 -m POST -D /b"), "{s}");
        assert!(s.ends_with("/echo"));
    }

    #[test]
    fn parses_oha_json() {
        let json = r#"{
          "summary": {"successRate": 1.0, "total": 2.0, "slowest": 0.004, "fastest": 0.0001,
                      "average": 0.0002, "requestsPerSec": 1000.0, "totalData": 3400},
          "latencyPercentiles": {"p10": 0.0001, "p50": 0.00015, "p99": 0.001, "p99.9": 0.003},
          "statusCodeDistribution": {"200": 1998, "503": 1},
          "errorDistribution": {"aborted due to deadline": 5, "connection refused": 1}
        }"#;
        let r = parse(json).unwrap();
        assert_eq!((r.ok, r.errors), (1998, 2));
        assert_eq!(r.rate, 999.0);
        let l = r.latency.unwrap();
        assert!((l.p50_us - 150.0).abs() < 1e-6);
        assert!((l.p999_us - 3000.0).abs() < 1e-6);
        assert_eq!(r.first_error.as_deref(), Some("status 503"));
    }
}
