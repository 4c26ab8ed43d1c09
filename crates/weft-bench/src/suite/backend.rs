//! The backend server process (`weft-bench server`), shared by every
//! topology of a run.

use std::time::Duration;

use super::{
    process::{Proc, Spawn, free_port, local, wait_line},
    topology::Ctx,
};

/// Ports of the running backend.
#[derive(Debug)]
pub struct Backend {
    pub http: u16,
    pub grpc: u16,
    pub tcp: u16,
    pub proc: Option<Proc>,
}

impl Backend {
    /// Starts `weft-bench server` on fresh ports.
    pub async fn start(ctx: &Ctx) -> anyhow::Result<Self> {
        let (http, grpc, tcp) = (free_port(), free_port(), free_port());
        let mut proc = Spawn::new("backend", &ctx.me, &ctx.logs)
            .args(["server", "--http", &local(http).to_string()])
            .args([
                "--grpc",
                &local(grpc).to_string(),
                "--tcp",
                &local(tcp).to_string(),
            ])
            .cpus(ctx.proxy_cpus.as_deref())
            .pipe_stdout()
            .start()?;
        if let Some(mut out) = proc.stdout() {
            wait_line(&mut out, "ready", Duration::from_secs(10)).await?;
            // Keep draining stdout so the server never blocks on it.
            tokio::spawn(async move {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut out, &mut sink).await;
            });
        }
        Ok(Self {
            http,
            grpc,
            tcp,
            proc: Some(proc),
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map_or(0, |p| p.pid)
    }

    /// Ports without a process, for config-generation tests.
    pub fn fake(http: u16, grpc: u16, tcp: u16) -> Self {
        Self {
            http,
            grpc,
            tcp,
            proc: None,
        }
    }
}
