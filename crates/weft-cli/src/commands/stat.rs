//! `weft stat [SERVICE]`: success rate, requests per second and latency
//! percentiles per service and per edge, from `GET /meshes/{mesh}/stats`
//! (the control plane computes them from the proxies' reports).

use weft_api::rest::{MeshStats, TrafficStats};

use crate::{
    cli::{OutputFormat, StatArgs},
    output::{print_structured, table::Table},
};

pub async fn run(args: StatArgs) -> anyhow::Result<()> {
    let client = args.cp.client()?;
    let mut path = format!("/meshes/{}/stats", encode(&args.mesh));
    if let Some(service) = &args.service {
        path += &format!("?service={}", encode(service));
    }
    let stats: MeshStats = client.get(&path).await?;
    if !matches!(args.output, OutputFormat::Table) {
        print_structured(args.output, &[serde_json::to_value(&stats)?], true)?;
        return Ok(());
    }
    print!("{}", render(&stats));
    Ok(())
}

fn render(stats: &MeshStats) -> String {
    let mut out = String::new();
    if stats.services.is_empty() && stats.edges.is_empty() {
        return format!(
            "No traffic reported in mesh {} yet (proxies report every few seconds).\n",
            stats.mesh
        );
    }
    let columns = ["RPS", "SUCCESS", "P50", "P95", "P99", "REQUESTS"];
    let mut services = Table::new(&[&["SERVICE"][..], &columns].concat());
    for s in &stats.services {
        services.row([vec![s.destination.clone()], numbers(s)].concat());
    }
    out += &services.render();
    if !stats.edges.is_empty() {
        out.push('\n');
        let mut edges = Table::new(&[&["SOURCE", "DESTINATION"][..], &columns].concat());
        for e in &stats.edges {
            let source = match e.source.as_deref() {
                None | Some("") => "(unknown)".to_owned(),
                Some(s) => s.to_owned(),
            };
            edges.row([vec![source, e.destination.clone()], numbers(e)].concat());
        }
        out += &edges.render();
    }
    out
}

fn numbers(s: &TrafficStats) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}ms"));
    vec![
        format!("{:.1}", s.rps),
        s.success_rate
            .map_or("-".to_owned(), |r| format!("{:.2}%", r * 100.0)),
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms),
        s.requests.to_string(),
    ]
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: Option<&str>, destination: &str) -> TrafficStats {
        TrafficStats {
            source: source.map(str::to_owned),
            destination: destination.to_owned(),
            requests: 300,
            rps: 20.04,
            success_rate: Some(0.9),
            p50_ms: Some(1.25),
            p95_ms: Some(4.0),
            p99_ms: None,
        }
    }

    #[test]
    fn services_then_edges() {
        let stats = MeshStats {
            mesh: "default".into(),
            services: vec![row(None, "backend")],
            edges: vec![row(Some("web"), "backend"), row(Some(""), "backend")],
        };
        let text = render(&stats);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SERVICE  RPS   SUCCESS  P50    P95    P99  REQUESTS"
        );
        assert_eq!(lines[1], "backend  20.0  90.00%   1.2ms  4.0ms  -    300");
        assert!(lines[3].starts_with("SOURCE     DESTINATION"), "{text}");
        assert!(lines[4].starts_with("web        backend"), "{text}");
        assert!(lines[5].starts_with("(unknown)  backend"), "{text}");
    }

    #[test]
    fn nothing_reported_says_so() {
        let stats = MeshStats {
            mesh: "m".into(),
            services: vec![],
            edges: vec![],
        };
        assert!(render(&stats).starts_with("No traffic reported in mesh m"));
    }

    #[test]
    fn values_are_encoded() {
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
