//! The data-plane stream over TLS: proxies verify the control plane's
//! certificate against its CA file, refuse another CA, keep working
//! across a restart, and a plain http control plane needs an explicit opt-in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use weft_testkit::{DataplaneSpec, TestMesh, free_port, servers::http_get, wait};

const BIN: &str = env!("CARGO_BIN_EXE_weft");
/// The data-plane port serves TLS by default.
const TLS: &[&str] = &[];
const CONNECTED: &str = "connected to the control plane";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_verify_the_control_plane_and_refuse_another_ca() {
    let mesh = TestMesh::new(BIN);
    let mut cp = mesh.control_plane_with(TLS).await.unwrap();
    let ca_pem = std::fs::read_to_string(cp.cp_ca_file()).unwrap();
    assert!(ca_pem.contains("BEGIN CERTIFICATE"), "{ca_pem}");
    assert!(cp.log().contains("dp_tls=on"), "{}", cp.log());

    // The right CA: ready, with its config.
    let good = mesh
        .proxy(
            &cp,
            &DataplaneSpec::new("web-1", "web", "http", free_port()),
        )
        .await
        .unwrap();
    assert!(good.config().await.unwrap().is_object());

    // openssl verifies the port against the same CA file.
    if let Ok(out) = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", cp.dp_port)])
        .args(["-CAfile", &cp.cp_ca_file().display().to_string()])
        .arg("-verify_return_error")
        .stdin(std::process::Stdio::null())
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    }

    // Another control plane's CA: refused, not ready, and the log says why.
    let other = TestMesh::new(BIN);
    let other_cp = other.control_plane_with(TLS).await.unwrap();
    let wrong_ca = mesh.dir.join("other-ca.pem");
    std::fs::copy(other_cp.cp_ca_file(), &wrong_ca).unwrap();
    let spec = DataplaneSpec::new("web-2", "web", "http", free_port());
    let token = mesh.token(&cp, "default", &["web"]).await.unwrap();
    let token_file = mesh.dir.join("web-2.token");
    std::fs::write(&token_file, token).unwrap();
    let refused = mesh
        .spawn_proxy_with_ca(&cp, &spec, &token_file, Some(&wrong_ca))
        .unwrap();
    wait::until(
        "the verification error",
        Duration::from_secs(15),
        || async {
            let log = refused.log();
            log.contains("invalid peer certificate: UnknownIssuer")
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", refused.log()));
    let (status, _) = http_get(&refused.admin_url("/ready")).await.unwrap();
    assert_ne!(
        status, 200,
        "a proxy that cannot verify the control plane is not ready"
    );

    // A restart keeps the certificate: the proxy reconnects with the CA file it has.
    let before = good.log().matches(CONNECTED).count();
    assert!(cp.stop().await);
    cp.start().await.unwrap();
    assert_eq!(std::fs::read_to_string(cp.cp_ca_file()).unwrap(), ca_pem);
    wait::until("the proxy reconnects", Duration::from_secs(20), || async {
        (good.log().matches(CONNECTED).count() > before).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", good.log()));
}

#[tokio::test]
async fn a_plaintext_control_plane_needs_an_explicit_opt_in() {
    let mesh = TestMesh::new(BIN);
    let file = mesh.dir.join("web-1.yaml");
    std::fs::write(
        &file,
        DataplaneSpec::new("web-1", "web", "http", free_port()).yaml(),
    )
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["proxy", "--dataplane-file", &file.display().to_string()])
        .args(["--cp", "http://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--insecure-plaintext-cp"), "{err}");

    let missing = mesh.dir.join("missing-ca.pem");
    let out = tokio::process::Command::new(BIN)
        .args(["proxy", "--dataplane-file", &file.display().to_string()])
        .args(["--cp", "https://127.0.0.1:1", "--cp-ca-file"])
        .arg(&missing)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--cp-ca-file") && err.contains("missing-ca.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_verifies_an_https_api() {
    let mesh = TestMesh::new(BIN);
    // Creating the mesh already goes through `weft apply` over https.
    let cp = mesh.control_plane_with(&["--api-tls"]).await.unwrap();
    assert!(cp.log().contains("api_tls=on"), "{}", cp.log());
    let out = mesh.cli(&cp, &["get", "meshes"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("default"));

    let weft = |ca: Option<&std::path::Path>| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["get", "meshes"])
            .env("WEFT_CP", cp.api_url())
            .env("WEFT_ADMIN_TOKEN_FILE", cp.admin_token_file())
            // No default CA file to fall back on.
            .env("WEFT_HOME", mesh.dir.join("empty-home"))
            .env_remove("WEFT_CP_CA_FILE")
            .env_remove("WEFT_TOKEN");
        if let Some(ca) = ca {
            cmd.arg("--cp-ca-file").arg(ca);
        }
        cmd
    };
    let out = weft(None).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--cp-ca-file"), "{err}");

    let other = TestMesh::new(BIN);
    let other_cp = other.control_plane_with(TLS).await.unwrap();
    let out = weft(Some(&other_cp.cp_ca_file())).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("--cp-ca-file"), "{err}");

    let out = weft(Some(&cp.cp_ca_file())).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
