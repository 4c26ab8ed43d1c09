//! Zero trust end to end: the mesh CA, workload certificates checked with
//! `openssl s_client`, strict and permissive mTLS with curl, dataplane tokens
//! (wrong service, expired, revoked), and renewal under steady traffic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use weft_testkit::{
    ControlPlane, DataplaneSpec, Proxy, TestMesh, free_port, servers, traffic::Traffic, wait,
};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

async fn set_mtls(mesh: &TestMesh, cp: &ControlPlane, mode: &str, lifetime: &str) {
    let yaml = format!(
        "type: Mesh\nname: default\nmtls:\n  mode: {mode}\n  ca: {{ type: builtin }}\n  certificateLifetime: {lifetime}\n"
    );
    let out = mesh.apply(cp, &yaml).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// backend-1 in front of `app_port`, and web-1 with an outbound to it.
async fn pair(mesh: &TestMesh, cp: &ControlPlane, app_port: u16) -> (Proxy, Proxy, String) {
    let backend = mesh
        .proxy(
            cp,
            &DataplaneSpec::new("backend-1", "backend", "http", app_port),
        )
        .await
        .unwrap();
    let mut web = DataplaneSpec::new("web-1", "web", "http", free_port());
    let port = web.outbound("backend");
    let web = mesh.proxy(cp, &web).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    wait::until(
        "a route through the mesh",
        Duration::from_secs(10),
        || async {
            servers::http_get(&url)
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    )
    .await
    .unwrap();
    (web, backend, url)
}

async fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

/// The mesh root, from the API, written to a file for openssl.
async fn root_pem(mesh: &TestMesh, cp: &ControlPlane) -> std::path::PathBuf {
    let (status, body) = cp.api_get("/meshes/default/ca").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("PRIVATE KEY"),
        "the API never shows a CA key"
    );
    let ca: serde_json::Value = serde_json::from_str(&body).unwrap();
    let path = mesh.dir.join("root.pem");
    std::fs::write(&path, ca["certificatePem"].as_str().unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mtls_is_verifiable_with_openssl_and_refuses_plaintext() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    set_mtls(&mesh, &cp, "strict", "24h").await;
    let app = servers::http_server("app").await;
    let (_web, backend, url) = pair(&mesh, &cp, app.port).await;
    assert_eq!(
        servers::http_get(&url).await.unwrap(),
        (200, "app GET /\n".to_owned())
    );

    let root = root_pem(&mesh, &cp).await;
    let inbound = format!("127.0.0.1:{}", backend.spec.inbound_port);
    let out = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &inbound,
            "-CAfile",
            &root.display().to_string(),
            "-verify_return_error",
            "-tls1_3",
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "chain verifies against the mesh root:\n{text}"
    );
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let leaf = mesh.dir.join("leaf.pem");
    std::fs::write(&leaf, &text[begin..end]).unwrap();
    let san = run(
        "openssl",
        &[
            "x509",
            "-in",
            &leaf.display().to_string(),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    )
    .await;
    let san = String::from_utf8_lossy(&san.stdout);
    assert!(san.contains("URI:spiffe://default/backend"), "{san}");

    let plain = run(
        "curl",
        &["-sS", "--max-time", "5", &format!("http://{inbound}/")],
    )
    .await;
    assert!(
        !plain.status.success(),
        "strict refuses plaintext: {}",
        String::from_utf8_lossy(&plain.stdout)
    );

    let store = std::fs::read(mesh.dir.join("store.db")).unwrap();
    let needle = b"PRIVATE KEY";
    assert!(
        !store.windows(needle.len()).any(|w| w == needle),
        "the CA key is not in the store file in plaintext"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_serves_plaintext_and_mtls_on_one_port() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    set_mtls(&mesh, &cp, "permissive", "24h").await;
    let app = servers::http_server("app").await;
    let (_web, backend, url) = pair(&mesh, &cp, app.port).await;
    assert_eq!(
        servers::http_get(&url).await.unwrap().0,
        200,
        "mTLS between the proxies"
    );
    let plain = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{}/plain", backend.spec.inbound_port),
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "app GET /plain\n",
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let metrics = servers::http_get(&backend.admin_url("/metrics"))
        .await
        .unwrap()
        .1;
    let accepted = counter(&metrics, "weft_tls_inbound_mtls_connections_total");
    assert!(accepted > 0.0, "no mTLS connection counted: {metrics}");
}

/// Waits until the proxy's log shows `needle`.
async fn logged(proxy: &Proxy, needle: &str) {
    wait::until(
        &format!("{needle:?} in the proxy log"),
        Duration::from_secs(10),
        || async { proxy.log().contains(needle).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}:\n{}", proxy.log()));
}

/// A proxy the control plane refused never gets a config, so it is never ready.
async fn refused(proxy: &Proxy, needle: &str) {
    logged(proxy, needle).await;
    let ready = servers::http_get(&proxy.admin_url("/ready"))
        .await
        .map(|r| r.0)
        .unwrap_or(0);
    assert_ne!(ready, 200, "a refused proxy is not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_other_services_expired_or_revoked_are_refused() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    set_mtls(&mesh, &cp, "strict", "24h").await;
    let spec = DataplaneSpec::new("backend-1", "backend", "http", free_port());

    let web_token = mesh.dir.join("web.token");
    std::fs::write(
        &web_token,
        mesh.token(&cp, "default", &["web"]).await.unwrap(),
    )
    .unwrap();
    let wrong = mesh.spawn_proxy(&cp, &spec, &web_token).unwrap();
    refused(&wrong, "allows services [web], not backend").await;
    let dps = mesh
        .cli(&cp, &["get", "dataplanes", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dps.stdout).trim(),
        "[]",
        "nothing registered"
    );
    drop(wrong);

    let out = mesh
        .cli(
            &cp,
            &[
                "token",
                "dataplane",
                "--service",
                "backend",
                "--valid-for",
                "1s",
            ],
        )
        .await
        .unwrap();
    let expired = mesh.dir.join("expired.token");
    std::fs::write(&expired, &out.stdout).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = mesh.spawn_proxy(&cp, &spec, &expired).unwrap();
    refused(&late, "dataplane token: expired").await;
    drop(late);

    let good = mesh.proxy(&cp, &spec).await.unwrap();
    let token = std::fs::read_to_string(mesh.dir.join("backend-1.token")).unwrap();
    let out = mesh
        .cli(&cp, &["token", "revoke", token.trim()])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait::until(
        "the revoked proxy goes offline",
        Duration::from_secs(10),
        || async {
            let out = mesh
                .cli(&cp, &["inspect", "dataplane", "backend-1", "-o", "json"])
                .await
                .ok()?;
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (s["online"] == false).then_some(())
        },
    )
    .await
    .unwrap();
    // It keeps serving on its last config and certificate (which it can no
    // longer renew), but cannot come back.
    logged(&good, "dataplane token: revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_renew_under_a_minute_of_steady_traffic() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    set_mtls(&mesh, &cp, "strict", "10s").await;
    let app = servers::http_server("app").await;
    let (web, backend, url) = pair(&mesh, &cp, app.port).await;
    let traffic = Traffic::start(url);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let seen = traffic.finish().await;
    assert!(
        seen.answers.len() > 1000,
        "steady traffic ran: {}",
        seen.answers.len()
    );
    assert!(
        seen.failures.is_empty(),
        "{} failed requests: {:?}",
        seen.failures.len(),
        &seen.failures[..seen.failures.len().min(5)]
    );
    for proxy in [&web, &backend] {
        let metrics = servers::http_get(&proxy.admin_url("/metrics"))
            .await
            .unwrap()
            .1;
        let issued = counter(&metrics, "weft_tls_certificates_issued_total");
        assert!(
            issued >= 5.0,
            "{}: {issued} certificates in a minute of 10 s lifetimes",
            proxy.spec.name
        );
    }
}

/// The value of the first sample of `name` in Prometheus text, 0 if absent.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
