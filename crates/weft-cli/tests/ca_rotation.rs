//! A CA rotation under load: a strict mesh moves from builtin CA `ca-1` to
//! `ca-2` in the three documented steps (trust the new CA, issue from it,
//! drop the old one) while a caller sends requests back to back to a
//! backend, and not one request fails.
//!
//! Between steps every proxy has acknowledged the config it was sent;
//! after step 2 both proxies serve certificates that verify against
//! ca-2's root alone (checked with `openssl s_client`); after step 3 the
//! backend's certificate no longer verifies against ca-1's root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{path::Path, time::Duration};

use weft_testkit::{
    ControlPlane, DataplaneSpec, TestMesh, free_port, servers, traffic::Traffic, wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");
const WAIT: Duration = Duration::from_secs(30);

fn mesh_yaml(ca: &str, trusted: &[&str]) -> String {
    let mut yaml = format!(
        "type: Mesh\nname: default\nmtls:\n  mode: strict\n  ca: {{ type: builtin, name: {ca} }}\n"
    );
    if !trusted.is_empty() {
        yaml.push_str("  trustedCas:\n");
        for name in trusted {
            yaml.push_str(&format!("    - {{ type: builtin, name: {name} }}\n"));
        }
    }
    yaml
}

async fn apply(mesh: &TestMesh, cp: &ControlPlane, yaml: &str) {
    let out = mesh.apply(cp, yaml).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET /meshes/default/ca`: the issuing root and the trusted ones.
async fn served_ca(cp: &ControlPlane) -> (String, Vec<String>) {
    let (status, body) = cp.api_get("/meshes/default/ca").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let trusted = json["trusted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["certificatePem"].as_str().unwrap().to_owned())
        .collect();
    (json["certificatePem"].as_str().unwrap().to_owned(), trusted)
}

/// The first value of `key` anywhere in `json`.
fn find<'a>(json: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match json {
        serde_json::Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

/// Waits until every dataplane has acknowledged the config it was sent, and
/// that config is newer than `after` (the versions seen before the change).
async fn wait_acked(mesh: &TestMesh, cp: &ControlPlane, names: &[&str], after: &[u64]) -> Vec<u64> {
    let mut versions = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let floor = after.get(i).copied().unwrap_or(0);
        let version = wait::until(
            &format!("{name} acknowledges a new config"),
            WAIT,
            || async {
                let out = mesh
                    .cli(cp, &["inspect", "dataplane", name, "-o", "json"])
                    .await
                    .ok()?;
                let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                let sent = find(&json, "configVersionSent")?.as_u64()?;
                let acked = find(&json, "configVersionAcked")?.as_u64()?;
                (sent == acked && acked > floor).then_some(acked)
            },
        )
        .await
        .unwrap();
        versions.push(version);
    }
    versions
}

/// Whether the certificate served on `port` verifies against `ca_file`
/// alone (`openssl s_client`; the handshake itself may still fail later,
/// since this client has no certificate to offer).
async fn verifies(port: u16, ca_file: &Path) -> bool {
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
        ])
        .arg(ca_file)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Verify return code: 0 (ok)")
}

async fn wait_verifies(port: u16, ca_file: &Path, what: &str) {
    wait::until(what, WAIT, || async {
        verifies(port, ca_file).await.then_some(())
    })
    .await
    .unwrap();
}

/// Waits until `traffic` has had `n` more answers: each step runs under load.
async fn more_requests(traffic: &Traffic, n: usize) {
    let before = traffic.count();
    wait::until(&format!("{n} more answers"), WAIT, || async {
        (traffic.count() >= before + n).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_fails_no_request() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    apply(&mesh, &cp, &mesh_yaml("ca-1", &[])).await;
    let (ca1, trusted) = served_ca(&cp).await;
    assert!(trusted.is_empty());
    let ca1_file = mesh.dir.join("ca-1.pem");
    std::fs::write(&ca1_file, &ca1).unwrap();

    let app = servers::http_server("backend-app").await;
    let backend_spec = DataplaneSpec::new("backend-1", "backend", "http", app.port);
    let _backend = mesh.proxy(&cp, &backend_spec).await.unwrap();
    let mut web_spec = DataplaneSpec::new("web-1", "web", "http", free_port());
    let port = web_spec.outbound("backend");
    let _web = mesh.proxy(&cp, &web_spec).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    wait::until("web reaches backend over mTLS", WAIT, || async {
        servers::http_get(&url)
            .await
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .await
    .unwrap();
    let names = ["backend-1", "web-1"];
    let mut versions = wait_acked(&mesh, &cp, &names, &[]).await;
    wait_verifies(
        backend_spec.inbound_port,
        &ca1_file,
        "backend serves a ca-1 certificate",
    )
    .await;

    let traffic = Traffic::start(url.clone());
    more_requests(&traffic, 50).await;

    // 1. Trust ca-2 (generated now); ca-1 still issues.
    apply(&mesh, &cp, &mesh_yaml("ca-1", &["ca-2"])).await;
    let (issuing, trusted) = served_ca(&cp).await;
    assert_eq!(issuing, ca1);
    assert_eq!(trusted.len(), 1);
    let ca2 = trusted[0].clone();
    let ca2_file = mesh.dir.join("ca-2.pem");
    std::fs::write(&ca2_file, &ca2).unwrap();
    versions = wait_acked(&mesh, &cp, &names, &versions).await;
    more_requests(&traffic, 50).await;

    // 2. Issue from ca-2, trusting both: each proxy re-issues.
    apply(&mesh, &cp, &mesh_yaml("ca-2", &["ca-1"])).await;
    assert_eq!(served_ca(&cp).await, (ca2.clone(), vec![ca1.clone()]));
    versions = wait_acked(&mesh, &cp, &names, &versions).await;
    for (spec, what) in [
        (&backend_spec, "backend serves a ca-2 certificate"),
        (&web_spec, "web serves a ca-2 certificate"),
    ] {
        wait_verifies(spec.inbound_port, &ca2_file, what).await;
    }
    more_requests(&traffic, 50).await;

    // 3. Drop ca-1.
    apply(&mesh, &cp, &mesh_yaml("ca-2", &[])).await;
    assert_eq!(served_ca(&cp).await, (ca2.clone(), vec![]));
    wait_acked(&mesh, &cp, &names, &versions).await;
    more_requests(&traffic, 50).await;

    let seen = traffic.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{} of {} requests failed: {:?}",
        seen.failures.len(),
        seen.failures.len() + seen.answers.len(),
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert!(seen.answers.len() >= 200, "{} answers", seen.answers.len());
    assert!(seen.answers.iter().all(|(_, app)| app == "backend-app"));

    assert!(
        !verifies(backend_spec.inbound_port, &ca1_file).await,
        "the backend's certificate must not verify against ca-1"
    );
    assert!(verifies(backend_spec.inbound_port, &ca2_file).await);
    // A new request still works with only ca-2 trusted.
    let (status, _) = servers::http_get(&url).await.unwrap();
    assert_eq!(status, 200);
}
