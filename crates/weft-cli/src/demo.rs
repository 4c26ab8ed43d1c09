//! `weft demo`: a control plane on the embedded store, four small services
//! (`frontend` → two `backend` instances → `store`), each with its own
//! proxy, some traffic, and hints for what to try next. Ctrl-C stops it all.

pub mod app;
mod topology;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use weft_api::rest::{ApplyRequest, ApplyResponse};

use crate::{
    cli::DemoArgs,
    client::{ApiClient, get_text},
    process::SelfChild,
};
use topology::{API_URL, DEMO_SERVICES, DemoService, ENTRY_URL};
use weft_sidecar::shutdown;

/// How long each part may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = DemoDir::create()?;
    let mut children: Vec<SelfChild> = Vec::new();
    let result = start_and_serve(&args, &dir.0, &mut children).await;
    // Proxies first (together), so they deregister while the control plane
    // still runs; then the apps and the control plane.
    let (proxies, others): (Vec<_>, Vec<_>) = children
        .iter_mut()
        .partition(|c| c.name.starts_with("proxy-"));
    for group in [proxies, others] {
        futures_util::future::join_all(group.into_iter().map(|c| c.stop(Duration::from_secs(5))))
            .await;
    }
    if result.is_ok() {
        println!("\nstopped: every demo process has exited");
    }
    result
}

async fn start_and_serve(
    args: &DemoArgs,
    dir: &std::path::Path,
    children: &mut Vec<SelfChild>,
) -> anyhow::Result<()> {
    println!("starting the Weft demo (logs in {})", dir.display());
    let store = format!("sqlite:{}", dir.join("store.db").display());
    let ca_key_file = write_ca_key(dir)?;
    let admin_token_file = dir.join("admin-token").display().to_string();
    let cp_ca_file = dir.join("cp-ca.pem").display().to_string();
    let cp_args = [
        "control-plane",
        "--cp-ca-file-out",
        &cp_ca_file,
        "--store",
        &store,
        "--startup-grace",
        "1s",
        "--ca-key-file",
        &ca_key_file,
        "--admin-token-file",
        &admin_token_file,
    ]
    .map(String::from);
    children.push(SelfChild::spawn("control-plane", &cp_args, dir)?);
    wait_ready(children.last_mut(), &format!("{API_URL}/healthz")).await?;
    println!("  control plane  api {API_URL}  (store {store})");

    let admin_token = std::fs::read_to_string(&admin_token_file)
        .with_context(|| format!("cannot read {admin_token_file}"))?
        .trim()
        .to_owned();
    let api = ApiClient::new(API_URL, Some(admin_token.clone()), None)?;
    let mesh = ApplyRequest {
        resources: vec![
            serde_json::json!({
                "type": "Mesh",
                "name": "default",
                // Permissive: proxies talk mTLS to each other, while a person's
                // plaintext curl to the frontend is still accepted.
                "mtls": { "mode": "permissive", "ca": { "type": "builtin" } },
            }),
            // Two traffic policies to inspect: the frontend's calls to the
            // backend get a deadline, and failed tries of them another go.
            serde_json::json!({
                "type": "Timeout", "mesh": "default", "name": "frontend-to-backend",
                "selector": { "from": { "service": "frontend" }, "to": { "service": "backend" } },
                "spec": { "request": "5s" },
            }),
            serde_json::json!({
                "type": "Retry", "mesh": "default", "name": "backend-retries",
                "selector": { "to": { "service": "backend" } },
                "spec": { "attempts": 3 },
            }),
        ],
    };
    let _: ApplyResponse = api.post("/apply", &mesh).await?;

    for svc in DEMO_SERVICES {
        start_service(&api, svc, dir, children).await?;
    }
    drive_traffic().await?;
    print_next_steps(&admin_token);
    if args.exit_after_traffic {
        return Ok(());
    }
    println!("\nPress Ctrl-C to stop the demo.");
    tokio::select! {
        _ = shutdown::signal_received() => Ok(()),
        name = first_exit(children) => bail!("{name} exited unexpectedly; see its log in {}", dir.display()),
    }
}

async fn start_service(
    api: &ApiClient,
    svc: &DemoService,
    dir: &std::path::Path,
    children: &mut Vec<SelfChild>,
) -> anyhow::Result<()> {
    children.push(SelfChild::spawn(
        &format!("app-{}", svc.instance),
        &svc.app_args(),
        dir,
    )?);
    let dp_file = dir.join(format!("{}.yaml", svc.instance));
    std::fs::write(&dp_file, svc.dataplane_yaml())
        .with_context(|| format!("cannot write {}", dp_file.display()))?;
    let token_file = dir.join(format!("{}.token", svc.instance));
    let request =
        serde_json::json!({ "mesh": "default", "services": [svc.service], "validFor": "24h" });
    let reply: serde_json::Value = api.post("/tokens/dataplane", &request).await?;
    let Some(token) = reply.get("token").and_then(|t| t.as_str()) else {
        bail!(
            "the control plane issued no token for {}: {reply}",
            svc.instance
        );
    };
    std::fs::write(&token_file, token)
        .with_context(|| format!("cannot write {}", token_file.display()))?;
    let proxy_args = [
        "proxy".to_owned(),
        "--dataplane-file".to_owned(),
        dp_file.display().to_string(),
        "--token-file".to_owned(),
        token_file.display().to_string(),
        "--cp-ca-file".to_owned(),
        dir.join("cp-ca.pem").display().to_string(),
    ];
    children.push(SelfChild::spawn(
        &format!("proxy-{}", svc.instance),
        &proxy_args,
        dir,
    )?);
    wait_ready(
        children.last_mut(),
        &format!("http://127.0.0.1:{}/ready", svc.admin_port),
    )
    .await?;
    println!(
        "  {:<10} app 127.0.0.1:{}  proxy inbound :{}  admin :{}",
        svc.instance, svc.app_port, svc.inbound_port, svc.admin_port
    );
    Ok(())
}

/// Polls `url` until it answers 200, failing early if the process exits.
async fn wait_ready(child: Option<&mut SelfChild>, url: &str) -> anyhow::Result<()> {
    let Some(child) = child else {
        bail!("nothing to wait for")
    };
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.exited() {
            bail!(
                "{} exited ({status}) before it was ready:\n{}",
                child.name,
                child.log_tail(10)
            );
        }
        if let Ok((s, _)) = get_text(url).await
            && s.is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} was not ready within {READY_TIMEOUT:?} ({url}):\n{}",
                child.name,
                child.log_tail(10)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn drive_traffic() -> anyhow::Result<()> {
    println!("\nsending 4 requests to the frontend through its proxy ({ENTRY_URL}):");
    for _ in 0..4 {
        let (status, body) = get_text(ENTRY_URL).await?;
        println!("  {status}  {}", request_path(&body));
        println!("       {}", body.trim());
    }
    Ok(())
}

/// `frontend-1 → backend-2 → store-1`: the services a demo response passed through.
fn request_path(body: &str) -> String {
    let mut hops = Vec::new();
    let mut node = serde_json::from_str::<serde_json::Value>(body).ok();
    while let Some(n) = node {
        match n.get("service").and_then(|s| s.as_str()) {
            Some(s) => hops.push(s.to_owned()),
            None => break,
        }
        node = n.get("downstream").cloned();
    }
    hops.join(" → ")
}

fn print_next_steps(admin_token: &str) {
    println!(
        "\nTry next (in another terminal):\n  \
         export WEFT_TOKEN={admin_token}   # this demo's API admin token\n  \
         weft get meshes\n  \
         weft get dataplanes\n  \
         weft inspect dataplane frontend-1\n  \
         curl {ENTRY_URL}            # frontend → backend (round robin over 2) → store\n  \
         curl http://127.0.0.1:9901/config   # the config the frontend's proxy runs\n  \
         curl -s -H \"Authorization: Bearer $WEFT_TOKEN\" {API_URL}/meshes/default/ca   # the mesh root (proxies talk mTLS)"
    );
}

/// Resolves with the name of the first child that exits.
async fn first_exit(children: &mut [SelfChild]) -> String {
    loop {
        for c in children.iter_mut() {
            if c.exited().is_some() {
                return c.name.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh CA encryption key for the demo's control plane; returns its path.
fn write_ca_key(dir: &std::path::Path) -> anyhow::Result<String> {
    let (_, text) = weft_control_plane::CaKey::generate()
        .map_err(|_| anyhow::anyhow!("cannot generate a CA key"))?;
    let path = dir.join("ca.key");
    std::fs::write(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}

/// The demo's scratch directory, removed when the demo ends.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("weft-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
