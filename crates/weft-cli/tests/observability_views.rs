//! `weft tap` and `weft check` against a running mesh (control plane and
//! proxies as real processes, strict mTLS): a tap shows exactly the
//! requests sent that match its filters, tapping an unknown dataplane
//! fails naming it, and `weft check` passes on a healthy mesh and fails,
//! naming the dataplane with a hint, once a proxy is killed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{process::Stdio, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStderr, ChildStdout, Command},
};
use weft_testkit::{ControlPlane, TestMesh, servers, wait};

const BIN: &str = env!("CARGO_BIN_EXE_weft");
/// Generous bound for something that takes milliseconds.
const LIVENESS: Duration = Duration::from_secs(20);

/// `weft ARGS` against `cp`, running in the background.
fn spawn_cli(mesh: &TestMesh, cp: &ControlPlane, args: &[&str]) -> Child {
    Command::new(&mesh.bin)
        .args(args)
        .env("WEFT_CP", cp.api_url())
        .env("WEFT_CP_CA_FILE", cp.cp_ca_file())
        .env("WEFT_ADMIN_TOKEN_FILE", cp.admin_token_file())
        .env_remove("WEFT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>, what: &str) -> String {
    tokio::time::timeout(LIVENESS, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {LIVENESS:?}"))
        .unwrap()
        .unwrap_or_else(|| panic!("the stream ended before {what}"))
}

async fn send(method: &str, url: &str) {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(LIVENESS, servers::http_client().request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200, "{method} {url}");
    response.into_body().collect().await.unwrap();
}

/// A running `weft tap`: its output lines.
struct Tap {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    _stderr: Lines<BufReader<ChildStderr>>,
}

/// Starts `weft tap dataplane ARGS` and waits until the proxy runs the tap.
async fn tap(mesh: &TestMesh, cp: &ControlPlane, args: &[&str]) -> Tap {
    let mut all = vec!["tap", "dataplane"];
    all.extend(args);
    let mut child = spawn_cli(mesh, cp, &all);
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = next_line(&mut stderr, "the tap's start note").await;
    assert!(started.starts_with("tapping dataplane"), "{started}");
    Tap {
        child,
        stdout,
        _stderr: stderr,
    }
}

impl Tap {
    /// Stops it with Ctrl-C (SIGINT), which ends `weft tap` successfully.
    async fn interrupt(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let kill = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .unwrap();
        assert!(kill.success());
        let status = tokio::time::timeout(LIVENESS, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "weft tap exited with {status}");
    }
}

#[tokio::test]
async fn tap_shows_exactly_the_matching_requests() {
    let mesh = TestMesh::new(BIN);
    let (cp, backend, _caller, url) = mesh.strict_mtls_pair().await.unwrap();

    let mut filtered = tap(
        &mesh,
        &cp,
        &["backend-1", "--path", "/api", "--method", "get"],
    )
    .await;
    let mut everything = tap(&mesh, &cp, &["backend-1", "-o", "json"]).await;
    let sent = [
        ("GET", "api/one"),
        ("POST", "api/two"),
        ("GET", "other"),
        ("GET", "api/three"),
    ];
    for (method, path) in sent {
        send(method, &format!("{url}{path}")).await;
    }

    // Requests finish one after another, and a tap keeps their order: once
    // the last one is shown, any earlier match would have been too.
    let mut shown = Vec::new();
    loop {
        let line = next_line(&mut filtered.stdout, "a tapped request").await;
        let fields: Vec<&str> = line.split_whitespace().collect();
        // time direction src -> dst METHOD authority path status latency
        assert_eq!(fields.len(), 10, "{line}");
        assert_eq!(&fields[1..5], ["inbound", "web", "->", "backend"], "{line}");
        assert_eq!(fields[8], "200", "{line}");
        shown.push((fields[5].to_owned(), fields[7].to_owned()));
        if fields[7] == "/api/three" {
            break;
        }
    }
    assert_eq!(
        shown,
        [
            ("GET".to_owned(), "/api/one".to_owned()),
            ("GET".to_owned(), "/api/three".to_owned())
        ]
    );

    // Without filters every request shows, as JSON lines.
    let mut paths = Vec::new();
    while paths.len() < sent.len() {
        let line = next_line(&mut everything.stdout, "a tapped request").await;
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        if value["event"] == "request" {
            assert_eq!(value["destinationService"], "backend", "{line}");
            paths.push((
                value["method"].as_str().unwrap().to_owned(),
                value["path"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let expected: Vec<(String, String)> = sent
        .iter()
        .map(|(m, p)| ((*m).to_owned(), format!("/{p}")))
        .collect();
    assert_eq!(paths, expected);

    filtered.interrupt().await;
    everything.interrupt().await;
    // The control plane noticed the clients leaving and stopped both taps.
    wait::until("the proxy to stop both taps", LIVENESS, || async {
        (backend.proxy.log().matches("tap stopped").count() == 2).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tapping_an_unknown_dataplane_fails_naming_it() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let out = mesh.cli(&cp, &["tap", "dataplane", "ghost"]).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dataplane \"ghost\" not found in mesh \"default\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_passes_on_a_healthy_mesh_and_names_an_offline_dataplane() {
    let mesh = TestMesh::new(BIN);
    let (cp, mut backend, _caller, _url) = mesh.strict_mtls_pair().await.unwrap();

    // A config still on its way warns; the mesh settles within moments.
    let out = wait::until("weft check to pass without warnings", LIVENESS, || async {
        let out = mesh.cli(&cp, &["check"]).await.ok()?;
        let settled = !String::from_utf8_lossy(&out.stdout).contains("WARN");
        (out.status.success() && settled).then_some(out)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "one line per check, no problems:\n{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("PASS ")), "{stdout}");
    assert!(
        stdout.contains("dataplanes online and acknowledged: 2 of 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("workload certificates fresh: 2 known"),
        "{stdout}"
    );
    assert!(stdout.contains("and 2 proxies compared"), "{stdout}");

    // Killed, not stopped: it does not deregister, so it is offline.
    backend.proxy.kill().await;
    // Until the caller has acknowledged the config without backend-1 (a
    // check in between also warns that its config is on its way).
    let out = wait::until("weft check to fail on backend-1 only", LIVENESS, || async {
        let out = mesh.cli(&cp, &["check"]).await.ok()?;
        let settled = !String::from_utf8_lossy(&out.stdout).contains("WARN");
        (!out.status.success() && settled).then_some(out)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("FAIL  dataplanes online and acknowledged: 1 of 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL default/backend-1: offline since"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hint: start its proxy")
            && stdout.contains("weft delete dataplane backend-1 -m default"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 6 checks failed"), "{stderr}");

    let out = mesh.cli(&cp, &["check", "-o", "json"]).await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "FAIL")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["dataplanes online and acknowledged"]);

    let out = mesh
        .cli(&cp, &["tap", "dataplane", "backend-1"])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("default/backend-1 has no tap stream: its proxy is offline"),
        "{stderr}"
    );
}
