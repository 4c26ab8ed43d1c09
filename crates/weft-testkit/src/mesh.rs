//! A test mesh: the real `weft` binary as control plane and proxies, in a
//! scratch directory that is removed unless the test failed.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::Context;

use crate::{DataplaneSpec, free_port, process::TestProcess, servers::http_get, wait};

/// The file in each test dir holding the control plane's CA encryption key.
pub const CA_KEY_FILE: &str = "ca.key";

/// Writes 32 random bytes, base64, as `--ca-key-file` expects.
fn write_ca_key(path: &Path) -> std::io::Result<()> {
    use base64::Engine;
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    std::fs::write(path, base64::engine::general_purpose::STANDARD.encode(key))
}

/// How long a process may take to become ready in tests.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestMesh {
    pub bin: PathBuf,
    pub dir: PathBuf,
    /// What proxies run as: `weft proxy` unless a test picks `weft-proxy`.
    proxy_command: Vec<String>,
}

impl TestMesh {
    /// `bin` is the `weft` binary (`env!("CARGO_BIN_EXE_weft")` in tests).
    pub fn new(bin: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create test dir {}: {e}", dir.display());
        }
        if let Err(e) = write_ca_key(&dir.join(CA_KEY_FILE)) {
            panic!("cannot write the CA key in {}: {e}", dir.display());
        }
        Self {
            bin: bin.into(),
            dir,
            proxy_command: vec![bin.to_owned(), "proxy".to_owned()],
        }
    }

    /// Proxies run as `command` (the executable, then its leading arguments)
    /// instead of `weft proxy`: e.g. `weft-proxy --workers 1`.
    pub fn with_proxy_command(mut self, command: &[&str]) -> Self {
        self.proxy_command = command.iter().map(|a| a.to_string()).collect();
        self
    }

    /// A dataplane token for `services` in `mesh`, from `weft token dataplane`.
    pub async fn token(
        &self,
        cp: &ControlPlane,
        mesh: &str,
        services: &[&str],
    ) -> anyhow::Result<String> {
        let mut args = vec!["token", "dataplane", "--mesh", mesh];
        for s in services {
            args.extend(["--service", s]);
        }
        let out = self.cli(cp, &args).await?;
        anyhow::ensure!(
            out.status.success(),
            "weft token dataplane failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Starts a control plane on a SQLite store in the test dir and waits until it is healthy.
    pub async fn control_plane(&self) -> anyhow::Result<ControlPlane> {
        self.control_plane_with(&[]).await
    }

    /// [`TestMesh::control_plane`] with more `weft control-plane` arguments.
    pub async fn control_plane_with(&self, extra_args: &[&str]) -> anyhow::Result<ControlPlane> {
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let dp_tls = !extra_args.iter().any(|a| a == "--insecure-plaintext-dp");
        let api_tls = extra_args.iter().any(|a| a == "--api-tls");
        let mut cp = ControlPlane {
            api_port: free_port(),
            dp_port: free_port(),
            store: format!("sqlite:{}", self.dir.join("store.db").display()),
            dp_tls,
            api_tls,
            extra_args,
            bin: self.bin.clone(),
            dir: self.dir.clone(),
            process: None,
        };
        cp.start().await?;
        let out = self.apply(&cp, "type: Mesh\nname: default\n").await?;
        anyhow::ensure!(
            out.status.success(),
            "cannot create mesh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(cp)
    }

    /// Writes the spec's Dataplane file and a token for its service, starts
    /// its proxy and waits for `/ready`.
    pub async fn proxy(&self, cp: &ControlPlane, spec: &DataplaneSpec) -> anyhow::Result<Proxy> {
        let token = self.token(cp, &spec.mesh, &[&spec.service]).await?;
        let token_file = self.dir.join(format!("{}.token", spec.name));
        std::fs::write(&token_file, token)?;
        self.proxy_with_token_file(cp, spec, &token_file).await
    }

    /// Starts a proxy without waiting for it to become ready: for proxies
    /// the control plane is expected to refuse.
    pub fn spawn_proxy(
        &self,
        cp: &ControlPlane,
        spec: &DataplaneSpec,
        token_file: &Path,
    ) -> anyhow::Result<Proxy> {
        let ca = cp.dp_tls.then(|| cp.cp_ca_file());
        self.spawn_proxy_with_ca(cp, spec, token_file, ca.as_deref())
    }

    /// [`TestMesh::spawn_proxy`] verifying the control plane with the CA
    /// certificate file `cp_ca_file` (plaintext when `None`).
    pub fn spawn_proxy_with_ca(
        &self,
        cp: &ControlPlane,
        spec: &DataplaneSpec,
        token_file: &Path,
        cp_ca_file: Option<&Path>,
    ) -> anyhow::Result<Proxy> {
        let mut proxy = Proxy {
            token_file: token_file.to_owned(),
            spec: spec.clone(),
            command: self.proxy_command.clone(),
            dir: self.dir.clone(),
            cp_dp_url: cp.dp_url(),
            cp_ca_file: cp_ca_file.map(Path::to_owned),
            process: None,
        };
        proxy.spawn()?;
        Ok(proxy)
    }

    /// Like [`TestMesh::proxy`] with a token file of the test's choosing.
    pub async fn proxy_with_token_file(
        &self,
        cp: &ControlPlane,
        spec: &DataplaneSpec,
        token_file: &Path,
    ) -> anyhow::Result<Proxy> {
        let proxy = self.spawn_proxy(cp, spec, token_file)?;
        proxy.wait_ready().await?;
        Ok(proxy)
    }

    /// Runs a CLI verb against `cp`.
    pub async fn cli(
        &self,
        cp: &ControlPlane,
        args: &[&str],
    ) -> anyhow::Result<std::process::Output> {
        tokio::process::Command::new(&self.bin)
            .args(args)
            .env("WEFT_CP", cp.api_url())
            .env("WEFT_CP_CA_FILE", cp.cp_ca_file())
            .env("WEFT_ADMIN_TOKEN_FILE", cp.admin_token_file())
            .env_remove("WEFT_TOKEN")
            .output()
            .await
            .context("cannot run weft")
    }

    /// `weft apply -f -` with `yaml` on standard input.
    pub async fn apply(
        &self,
        cp: &ControlPlane,
        yaml: &str,
    ) -> anyhow::Result<std::process::Output> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.bin)
            .args(["apply", "-f", "-"])
            .env("WEFT_CP", cp.api_url())
            .env("WEFT_CP_CA_FILE", cp.cp_ca_file())
            .env("WEFT_ADMIN_TOKEN_FILE", cp.admin_token_file())
            .env_remove("WEFT_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(yaml.as_bytes()).await?;
        }
        Ok(child.wait_with_output().await?)
    }
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct ControlPlane {
    pub api_port: u16,
    pub dp_port: u16,
    pub store: String,
    /// Whether the data-plane port serves TLS (proxies then verify it
    /// with [`ControlPlane::cp_ca_file`]).
    pub dp_tls: bool,
    /// Whether the REST API serves https (the CLI then verifies it with
    /// [`ControlPlane::cp_ca_file`]).
    pub api_tls: bool,
    /// More `weft control-plane` arguments, kept across restarts.
    pub extra_args: Vec<String>,
    bin: PathBuf,
    dir: PathBuf,
    process: Option<TestProcess>,
}

impl ControlPlane {
    /// Where the control plane writes its generated CA certificate.
    pub fn cp_ca_file(&self) -> PathBuf {
        self.dir.join("cp-ca.pem")
    }

    pub fn api_url(&self) -> String {
        let scheme = if self.api_tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.api_port)
    }

    pub fn dp_url(&self) -> String {
        let scheme = if self.dp_tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.dp_port)
    }

    /// Where the control plane writes its API admin token.
    pub fn admin_token_file(&self) -> PathBuf {
        self.dir.join("admin-token")
    }

    /// The API admin token (after the first start).
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.admin_token_file())
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    }

    /// GET an API path with the admin token: status and body.
    pub async fn api_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        crate::servers::http_get_with(
            &format!("{}{path}", self.api_url()),
            &[("authorization", format!("Bearer {}", self.admin_token()))],
        )
        .await
    }

    /// Starts (or restarts) the process on the same ports and store.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let mut args = vec![
            "control-plane".to_owned(),
            "--store".to_owned(),
            self.store.clone(),
            "--api-addr".to_owned(),
            format!("127.0.0.1:{}", self.api_port),
            "--dp-addr".to_owned(),
            format!("127.0.0.1:{}", self.dp_port),
            "--ca-key-file".to_owned(),
            self.dir.join(CA_KEY_FILE).display().to_string(),
            "--admin-token-file".to_owned(),
            self.admin_token_file().display().to_string(),
            "--cp-ca-file-out".to_owned(),
            self.cp_ca_file().display().to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        // The log is appended across restarts: wait for one more ready line.
        let ready_before = self.log().matches("control plane ready").count();
        self.process = Some(TestProcess::spawn(
            &self.bin,
            "control-plane",
            &args,
            &self.dir,
            &[],
        )?);
        let url = &format!("{}/healthz", self.api_url());
        let process = self.process.as_ref();
        let api_tls = self.api_tls;
        wait::until("control plane healthy", READY_TIMEOUT, || async move {
            if api_tls {
                // The plain test client cannot speak https: trust the log.
                let log = process.map(TestProcess::log_text).unwrap_or_default();
                let ready = log.matches("control plane ready").count() > ready_before;
                return ready.then_some(());
            }
            http_get(url)
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(drop)
        })
        .await
        .with_context(|| self.log())?;
        Ok(())
    }

    /// SIGKILL: an abrupt outage.
    pub async fn kill(&mut self) {
        if let Some(p) = &mut self.process {
            p.kill().await;
        }
    }

    pub async fn stop(&mut self) -> bool {
        match &mut self.process {
            Some(p) => p.terminate(Duration::from_secs(10)).await,
            None => true,
        }
    }

    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(TestProcess::log_text)
            .unwrap_or_default()
    }
}

pub struct Proxy {
    pub spec: DataplaneSpec,
    token_file: PathBuf,
    /// The executable and its leading arguments (`weft proxy`).
    command: Vec<String>,
    dir: PathBuf,
    cp_dp_url: String,
    cp_ca_file: Option<PathBuf>,
    process: Option<TestProcess>,
}

impl Proxy {
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.spec.admin_port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let file = self.dir.join(format!("{}.yaml", self.spec.name));
        std::fs::write(&file, self.spec.yaml())?;
        let (bin, leading) = self
            .command
            .split_first()
            .context("the proxy command is empty")?;
        let mut args = leading.to_vec();
        args.extend([
            "--dataplane-file".to_owned(),
            file.display().to_string(),
            "--cp".to_owned(),
            self.cp_dp_url.clone(),
            "--token-file".to_owned(),
            self.token_file.display().to_string(),
            // Traffic counters reach `weft stat` within a second.
            "--stats-interval".to_owned(),
            "1s".to_owned(),
        ]);
        match &self.cp_ca_file {
            Some(ca) => args.extend(["--cp-ca-file".to_owned(), ca.display().to_string()]),
            None => args.push("--insecure-plaintext-cp".to_owned()),
        }
        let name = format!("proxy-{}", self.spec.name);
        self.process = Some(TestProcess::spawn(
            Path::new(bin),
            &name,
            &args,
            &self.dir,
            &[],
        )?);
        Ok(())
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = self.admin_url("/ready");
        wait::until(
            &format!("proxy {} ready", self.spec.name),
            READY_TIMEOUT,
            || async { http_get(&url).await.ok().filter(|(s, _)| *s == 200) },
        )
        .await
        .with_context(|| self.log())?;
        Ok(())
    }

    /// SIGTERM: deregisters, drains and exits. Returns whether it exited cleanly.
    pub async fn stop(&mut self) -> bool {
        match &mut self.process {
            Some(p) => p.terminate(Duration::from_secs(15)).await,
            None => true,
        }
    }

    /// The proxy's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(TestProcess::pid)
    }

    /// Whether the proxy process is still running (it did not crash).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(TestProcess::is_running)
    }

    /// SIGKILL: the proxy vanishes without deregistering.
    pub async fn kill(&mut self) {
        if let Some(p) = &mut self.process {
            p.kill().await;
        }
    }

    /// The proxy's `/config` as JSON.
    pub async fn config(&self) -> anyhow::Result<serde_json::Value> {
        let (_, body) = http_get(&self.admin_url("/config")).await?;
        Ok(serde_json::from_str(&body)?)
    }

    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(TestProcess::log_text)
            .unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
