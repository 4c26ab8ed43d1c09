//! Child processes of this binary (used by `weft demo`): started with the
//! same executable, stopped with SIGTERM, and never outliving their parent.

#![allow(unsafe_code)]

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context;
use tokio::process::{Child, Command};

/// A running `weft` subcommand whose output goes to a log file.
pub struct SelfChild {
    pub name: String,
    pub log: std::path::PathBuf,
    child: Child,
}

impl SelfChild {
    /// Starts `weft ARGS...`, logging to `log_dir/NAME.log`.
    pub fn spawn(name: &str, args: &[String], log_dir: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the weft executable")?;
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent; it makes the kernel stop the child if `weft demo` dies
        // without cleaning up (e.g. SIGKILL), so no process is left behind.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            log,
            child,
        })
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: sending a signal to our own child's pid, which cannot
            // have been reused while we hold its unreaped `Child`.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// The last lines of the log, to explain an early exit.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
