//! Metrics through real proxies: a real Prometheus (the Debian package,
//! installed by `scripts/install-test-deps`) scrapes the control plane and
//! every proxy and sees the request rate sent on one edge; `weft stat`
//! prints the rate and success of what was sent; both `/metrics` pages are
//! OpenMetrics with the families the docs list.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{path::Path, process::Stdio, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::process::{Child, Command};
use weft_testkit::{ControlPlane, Proxy, TestMesh, free_port, load, servers, wait};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

/// Where the edge's rate is asked for: requests from `web` to `backend`
/// as the caller's proxy counted them.
const EDGE_RATE: &str = "sum(rate(weft_requests_total{direction=\"outbound\",source_service=\"web\",destination_service=\"backend\"}[10s]))";

/// A Prometheus server scraping `targets` every second; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    async fn start(dir: &Path, cp: &ControlPlane, proxies: &[&Proxy]) -> Self {
        let check = Command::new("prometheus").arg("--version").output().await;
        assert!(
            check.is_ok_and(|o| o.status.success()),
            "`prometheus` is not installed: run scripts/install-test-deps (Debian package prometheus)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let proxies: Vec<String> = proxies
            .iter()
            .map(|p| format!("'127.0.0.1:{}'", p.spec.admin_port))
            .collect();
        let config = format!(
            "global: {{ scrape_interval: 1s, scrape_timeout: 900ms }}\n\
             scrape_configs:\n\
             - job_name: control-plane\n  \
               authorization: {{ type: Bearer, credentials_file: '{}' }}\n  \
               static_configs: [{{ targets: ['127.0.0.1:{}'] }}]\n\
             - job_name: proxies\n  \
               static_configs: [{{ targets: [{}] }}]\n",
            cp.admin_token_file().display(),
            cp.api_port,
            proxies.join(", "),
        );
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait::until("prometheus ready", Duration::from_secs(30), || async {
            servers::http_get(&ready)
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            )
        });
        Self { child, url }
    }

    /// The samples of an instant query: (labels, value).
    async fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let url = format!("{}/api/v1/query?query={}", self.url, encode(promql));
        let (status, body) = servers::http_get(&url).await.unwrap();
        assert_eq!(status, 200, "{promql}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_the_rate_sent_on_an_edge() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, caller, url) = mesh.pair().await.unwrap();
    let prometheus = Prometheus::start(
        &mesh.dir.join("prometheus"),
        &cp,
        &[&caller, &backend.proxy],
    )
    .await;

    // 20 requests per second for 16 s; the rate is read while they flow.
    let load = tokio::spawn(async move { load::paced(&url, 20, Duration::from_secs(16)).await });
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut seen = Vec::new();
    let mut in_band = false;
    for _ in 0..6 {
        let samples = prometheus.query(EDGE_RATE).await;
        if let [(_, rate)] = samples.as_slice() {
            seen.push(*rate);
            if (14.0..=26.0).contains(rate) {
                in_band = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let answers = load.await.unwrap();
    assert!(
        answers.iter().all(|a| a.status == 200),
        "not every request succeeded"
    );
    assert!(in_band, "the edge's rate was {seen:?}, not about 20/s");

    // Every target was scraped: Prometheus took both expositions.
    let up = prometheus.query("up").await;
    assert_eq!(up.len(), 3, "{up:?}");
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    // The control plane's own families arrive too.
    let proxies = prometheus.query("sum(weft_cp_connected_proxies)").await;
    assert_eq!(proxies.first().map(|(_, v)| *v), Some(2.0), "{proxies:?}");
    // And the inbound side counted every request sent to the backend (once
    // the next scrapes took the last ones).
    let sent = answers.len() as f64;
    let inbound = "sum(weft_requests_total{direction=\"inbound\",destination_service=\"backend\"})";
    wait::until(
        "the backend's count in Prometheus",
        Duration::from_secs(10),
        || async {
            let total = prometheus
                .query(inbound)
                .await
                .first()
                .map_or(0.0, |(_, v)| *v);
            (total >= sent).then_some(())
        },
    )
    .await
    .unwrap();
}

/// `weft stat -o json`, parsed.
async fn stat(mesh: &TestMesh, cp: &ControlPlane, args: &[&str]) -> Result<Value, String> {
    let out = mesh
        .cli(cp, &[&["stat", "-o", "json"][..], args].concat())
        .await
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(list
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(list))
}

fn edge<'a>(stats: &'a Value, source: &str, destination: &str) -> Option<&'a Value> {
    stats["edges"]
        .as_array()?
        .iter()
        .find(|e| e["source"] == source && e["destination"] == destination)
}

fn service<'a>(stats: &'a Value, name: &str) -> Option<&'a Value> {
    stats["services"]
        .as_array()?
        .iter()
        .find(|s| s["destination"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_stat_prints_rate_and_success_per_service_and_edge() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, _caller, url) = mesh.pair().await.unwrap();
    let target = url.clone();
    let load = tokio::spawn(async move { load::paced(&target, 20, Duration::from_secs(30)).await });

    // A clean run: about 20/s on the edge and into the service, all good.
    let last = std::sync::Mutex::new(None);
    let clean = wait::until(
        "weft stat shows the clean edge",
        Duration::from_secs(15),
        || async {
            let stats = stat(&mesh, &cp, &[]).await.ok()?;
            *last.lock().unwrap() = Some(stats.clone());
            let e = edge(&stats, "web", "backend")?;
            let s = service(&stats, "backend")?;
            let rps = e["rps"].as_f64()?;
            let fine = (12.0..=28.0).contains(&rps)
                && e["successRate"] == 1.0
                && s["successRate"] == 1.0
                && (12.0..=28.0).contains(&s["rps"].as_f64()?)
                && e["p50Ms"].as_f64().is_some();
            fine.then_some(stats)
        },
    )
    .await;
    let clean = clean.unwrap_or_else(|e| panic!("{e}; last: {:?}", last.lock().unwrap()));
    assert!(
        edge(&clean, "web", "backend").unwrap()["requests"]
            .as_u64()
            .unwrap()
            > 0
    );

    let table = mesh.cli(&cp, &["stat", "backend"]).await.unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    assert!(text.starts_with("SERVICE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("web ") && l.contains("backend") && l.contains("100.00%")),
        "{text}"
    );

    // Half the answers fail: the success rate drops to about one half.
    backend.behavior.set_fail_percent(50);
    wait::until(
        "weft stat shows the failures",
        Duration::from_secs(15),
        || async {
            let stats = stat(&mesh, &cp, &["backend"]).await.ok()?;
            let rate = edge(&stats, "web", "backend")?["successRate"].as_f64()?;
            (0.2..=0.8).contains(&rate).then_some(())
        },
    )
    .await
    .unwrap();
    load.abort();

    // Unknown names are errors that say what is unknown.
    let err = stat(&mesh, &cp, &["nosuch"]).await.unwrap_err();
    assert!(
        err.contains("service \"nosuch\" does not exist in mesh \"default\""),
        "{err}"
    );
    let err = stat(&mesh, &cp, &["--mesh", "elsewhere"])
        .await
        .unwrap_err();
    assert!(err.contains("mesh \"elsewhere\" does not exist"), "{err}");
}

/// GET with headers: status, content type and body.
async fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = http::Request::get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = servers::http_client()
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Checks the OpenMetrics text structure: every sample belongs to a family
/// declared before it, values are numbers, and `# EOF` ends it once.
/// Returns the declared family names with their types.
fn parse_openmetrics(text: &str) -> Vec<(String, String)> {
    let body = text.strip_suffix("# EOF\n").expect("ends with # EOF");
    assert!(!body.contains("# EOF"), "a second # EOF");
    let mut families: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            families.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        let name = series.split('{').next().unwrap();
        let (family, kind) = families.last().expect("a sample before any # TYPE");
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        assert!(
            suffixes.iter().any(|s| name == format!("{family}{s}")),
            "{line} is not in family {family} ({kind})"
        );
    }
    families
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pages_are_openmetrics_with_the_listed_families() {
    let mesh = TestMesh::new(BIN);
    let (cp, _backend, caller, url) = mesh.pair().await.unwrap();
    let answers = load::burst(&url, 10, 2, |_| vec![]).await;
    assert_eq!(load::count(&answers, |a| a.status == 200), 10);

    let (status, content_type, text) = get(&caller.admin_url("/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let families = parse_openmetrics(&text);
    for (name, kind) in [
        ("weft_requests", "counter"),
        ("weft_request_duration_seconds", "histogram"),
        ("weft_tcp_connections_opened", "counter"),
        ("weft_tcp_connections_closed", "counter"),
        ("weft_tcp_connections_active", "gauge"),
        ("weft_tcp_bytes", "counter"),
        ("weft_tls_inbound_handshake_failures", "counter"),
        ("weft_tls_outbound_handshake_failures", "counter"),
        ("weft_authz_denied", "counter"),
        ("weft_policy_events", "counter"),
        ("weft_control_plane_connected", "gauge"),
        ("weft_config_version", "gauge"),
    ] {
        assert!(
            families.iter().any(|(n, k)| n == name && k == kind),
            "no {kind} {name} in\n{text}"
        );
    }
    assert!(text.contains("weft_control_plane_connected 1\n"), "{text}");
    assert!(
        text.contains("weft_requests_total{direction=\"outbound\",source_service=\"web\",destination_service=\"backend\",route=\"\",status_code=\"200\"} "),
        "{text}"
    );

    // The control plane's page needs the admin token, like the rest of its API.
    let cp_metrics = format!("{}/metrics", cp.api_url());
    let (status, _, _) = get(&cp_metrics, None).await;
    assert_eq!(status, 401);
    let (status, content_type, text) = get(&cp_metrics, Some(&cp.admin_token())).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let families = parse_openmetrics(&text);
    for (name, kind) in [
        ("weft_cp_resources", "gauge"),
        ("weft_cp_connected_proxies", "gauge"),
        ("weft_cp_config_push_seconds", "histogram"),
        ("weft_cp_certificates_issued", "counter"),
        ("weft_cp_certificate_failures", "counter"),
    ] {
        assert!(
            families.iter().any(|(n, k)| n == name && k == kind),
            "no {kind} {name} in\n{text}"
        );
    }
    assert!(
        text.contains("weft_cp_resources{kind=\"Dataplane\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("weft_cp_connected_proxies{mesh=\"default\"} 2\n"),
        "{text}"
    );
    // Each proxy acknowledged at least one config: pushes were timed.
    let pushes = text
        .lines()
        .find_map(|l| l.strip_prefix("weft_cp_config_push_seconds_count "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(pushes >= 2, "{text}");
}
