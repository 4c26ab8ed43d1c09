//! The CLI against a real control plane: apply, get, delete, inspect,
//! validation errors that name the field, and persistence across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use weft_testkit::{DataplaneSpec, TestMesh};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dataplane_yaml(name: &str) -> String {
    let mut spec = DataplaneSpec::new(name, "web", "http", weft_testkit::free_port());
    spec.outbound("backend");
    spec.yaml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_inspect_delete_round_trip() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let file = mesh.dir.join("web.yaml");
    std::fs::write(&file, dataplane_yaml("web-1")).unwrap();
    let file = file.display().to_string();

    let out = mesh.cli(&cp, &["apply", "-f", &file]).await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "dataplane default/web-1 created\n");
    let again = mesh.cli(&cp, &["apply", "-f", &file]).await.unwrap();
    assert_eq!(
        stdout(&again),
        "dataplane default/web-1 unchanged\n",
        "apply is idempotent"
    );

    let table = stdout(&mesh.cli(&cp, &["get", "dataplanes"]).await.unwrap());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("MESH     NAME   ADDRESS    SERVICES"),
        "{table}"
    );
    let name_col = lines[0].find("NAME").unwrap();
    assert_eq!(
        &lines[1][name_col..name_col + 5],
        "web-1",
        "columns line up:\n{table}"
    );
    assert!(lines[1].contains("offline"), "{table}");

    let meshes = stdout(&mesh.cli(&cp, &["get", "meshes"]).await.unwrap());
    assert!(
        meshes.lines().nth(1).unwrap().starts_with("default  1 "),
        "{meshes}"
    );

    // YAML output can be applied again unchanged.
    let yaml = mesh
        .cli(&cp, &["get", "dataplane", "web-1", "-o", "yaml"])
        .await
        .unwrap();
    assert!(stdout(&yaml).contains("creationTime"), "{}", stdout(&yaml));
    let reapplied = mesh.apply(&cp, &stdout(&yaml)).await.unwrap();
    assert_eq!(
        stdout(&reapplied),
        "dataplane default/web-1 unchanged\n",
        "{}",
        stderr(&reapplied)
    );

    let json = mesh
        .cli(&cp, &["get", "dataplanes", "-m", "default", "-o", "json"])
        .await
        .unwrap();
    let items: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        items[0]["networking"]["inbound"][0]["tags"]["service"],
        "web"
    );

    let inspect = stdout(
        &mesh
            .cli(&cp, &["inspect", "dataplane", "web-1"])
            .await
            .unwrap(),
    );
    assert!(
        inspect.contains("Status:         offline (never connected)"),
        "{inspect}"
    );

    let del = mesh
        .cli(&cp, &["delete", "dataplane", "web-1"])
        .await
        .unwrap();
    assert!(del.status.success(), "{}", stderr(&del));
    let gone = mesh.cli(&cp, &["get", "dataplane", "web-1"]).await.unwrap();
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
}

/// Every validation rule: a clear error naming the field, a non-zero exit,
/// and nothing stored (not even the valid documents of the same file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_files_change_nothing() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let valid = dataplane_yaml("web-1");
    let cases: Vec<(String, &str)> = vec![
        (
            valid.replace("servicePort: ", "servicePort: 70000 #"),
            "networking.inbound[0].servicePort: 70000 is not a port (1-65535)",
        ),
        (
            valid.replace("protocol: http", "protocol: htp"),
            "networking.inbound[0].tags.protocol: \"htp\" is not a protocol (tcp, http, http2, grpc)",
        ),
        (
            valid.replace("service: web, ", ""),
            "networking.inbound[0].tags.service: required",
        ),
        (
            valid.replace("address: 127.0.0.1", "address: 127.0.0.1\n  color: blue"),
            "networking.color: unknown field `color`",
        ),
        (
            valid.replace("mesh: default", "mesh: nope"),
            "mesh \"nope\" does not exist",
        ),
        (
            "type: Mesh\nname: [broken\n".to_owned(),
            "not valid YAML or JSON",
        ),
        (
            "type: Mesh\nname: Bad_Name\n".to_owned(),
            "name: \"Bad_Name\" is not a valid name",
        ),
        (
            "type: Gateway\nname: g\n".to_owned(),
            "type: \"Gateway\" is not a kind",
        ),
    ];
    for (yaml, expected) in cases {
        // A valid mesh document first: it must not be stored either.
        let file = format!("type: Mesh\nname: extra\n---\n{yaml}");
        let out = mesh.apply(&cp, &file).await.unwrap();
        assert!(!out.status.success(), "accepted:\n{file}");
        assert!(
            stderr(&out).contains(expected),
            "expected {expected:?} in:\n{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("nothing was applied"),
            "{}",
            stderr(&out)
        );
    }
    let duplicate = {
        let mut spec = DataplaneSpec::new("web-2", "web", "http", weft_testkit::free_port());
        spec.outbounds
            .push((spec.inbound_port, "backend".into(), None));
        spec.yaml()
    };
    let out = mesh.apply(&cp, &duplicate).await.unwrap();
    assert!(
        stderr(&out).contains("networking.outbound[0].port:")
            && stderr(&out).contains("is already used by networking.inbound[0].port"),
        "{}",
        stderr(&out)
    );

    let meshes = mesh
        .cli(&cp, &["get", "meshes", "-o", "json"])
        .await
        .unwrap();
    let meshes: serde_json::Value = serde_json::from_slice(&meshes.stdout).unwrap();
    assert_eq!(
        meshes.as_array().unwrap().len(),
        1,
        "only `default`: {meshes}"
    );
    let dps = mesh
        .cli(&cp, &["get", "dataplanes", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(stdout(&dps).trim(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_calls_get_json_errors_and_change_nothing() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let auth = format!("Authorization: Bearer {}", cp.admin_token());
    let auth = auth.as_str();
    let curl = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", "-H", auth])
            .args(args)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let url = cp.api_url();
    let (code, body) = curl(vec![
        "-X".into(),
        "POST".into(),
        "-H".into(),
        "content-type: application/json".into(),
        "-d".into(),
        "{not json".into(),
        format!("{url}/apply"),
    ])
    .await;
    assert_eq!(code, "400", "{body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(),
        "{body}"
    );

    let bad_dp = r#"{"type":"Dataplane","mesh":"default","name":"x","networking":{"address":"127.0.0.1","inbound":[{"port":70000,"servicePort":1,"tags":{"service":"x"}}]}}"#;
    let (code, body) = curl(vec![
        "-X".into(),
        "PUT".into(),
        "-H".into(),
        "content-type: application/json".into(),
        "-d".into(),
        bad_dp.into(),
        format!("{url}/meshes/default/dataplanes/x"),
    ])
    .await;
    assert_eq!(code, "400", "{body}");
    assert!(
        body.contains("networking.inbound[0].port: 70000 is not a port (1-65535)"),
        "{body}"
    );

    let (code, _) = curl(vec![format!("{url}/meshes/default/dataplanes/x")]).await;
    assert_eq!(code, "404");
    let (code, body) = curl(vec![format!("{url}/meshes/default/gateways")]).await;
    assert_eq!(code, "404", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_control_plane_has_everything() {
    let mesh = TestMesh::new(BIN);
    let mut cp = mesh.control_plane().await.unwrap();
    let out = mesh
        .apply(
            &cp,
            &format!("type: Mesh\nname: other\n---\n{}", dataplane_yaml("web-1")),
        )
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = stdout(
        &mesh
            .cli(&cp, &["get", "dataplanes", "-o", "yaml"])
            .await
            .unwrap(),
    );
    assert!(cp.stop().await, "clean stop:\n{}", cp.log());
    cp.start().await.unwrap();
    let after = stdout(
        &mesh
            .cli(&cp, &["get", "dataplanes", "-o", "yaml"])
            .await
            .unwrap(),
    );
    assert_eq!(before, after);
    let meshes = stdout(&mesh.cli(&cp, &["get", "meshes"]).await.unwrap());
    assert!(meshes.contains("other"), "{meshes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_control_plane_is_a_clear_error() {
    let port = weft_testkit::free_port();
    let out = tokio::process::Command::new(BIN)
        .args(["get", "meshes", "--cp", &format!("http://127.0.0.1:{port}")])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the control plane"),
        "{}",
        stderr(&out)
    );
    let bad = tokio::process::Command::new(BIN)
        .args(["get", "gateways"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown kind \"gateways\""),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_without_the_admin_token_are_refused_and_change_nothing() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let token = cp.admin_token();
    assert!(token.starts_with("weft-admin-"), "{token:?}");
    let mode = std::fs::metadata(cp.admin_token_file()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    let url = format!("{}/meshes/intruder", cp.api_url());
    for auth in [
        None,
        Some("Authorization: Bearer weft-admin-guess"),
        Some("Authorization: Basic YWRtaW4="),
    ] {
        let mut args = vec![
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-d",
            r#"{"type":"Mesh","name":"intruder"}"#,
        ];
        if let Some(a) = auth {
            args.extend(["-H", a]);
        }
        args.push(&url);
        let out = tokio::process::Command::new("curl")
            .args(&args)
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "{auth:?}");
    }
    let health = weft_testkit::servers::http_get(&format!("{}/healthz", cp.api_url()))
        .await
        .unwrap();
    assert_eq!(health.0, 200, "health checks need no token");

    let out = tokio::process::Command::new(BIN)
        .args(["get", "meshes", "--cp", &cp.api_url()])
        .env("WEFT_TOKEN", "weft-admin-wrong")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid admin token"),
        "{}",
        stderr(&out)
    );

    let meshes = mesh
        .cli(&cp, &["get", "meshes", "-o", "json"])
        .await
        .unwrap();
    let meshes: serde_json::Value = serde_json::from_slice(&meshes.stdout).unwrap();
    assert_eq!(
        meshes.as_array().unwrap().len(),
        1,
        "nothing was created: {meshes}"
    );
}
