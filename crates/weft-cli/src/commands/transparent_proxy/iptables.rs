//! Running `iptables-save` and `iptables-restore` for the current network
//! namespace. The nft backend (`iptables-nft-*`) is preferred where it is
//! installed, since that is what current distributions use and mixing
//! backends in one namespace leaves rules the other cannot see; otherwise
//! the plain `iptables-*` commands decide.

use std::{
    env,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

/// The pair of commands one backend consists of.
#[derive(Debug, Clone)]
pub struct Backend {
    save: PathBuf,
    restore: PathBuf,
}

impl Backend {
    /// Finds `iptables-nft-save`/`-restore` on `PATH`, else
    /// `iptables-save`/`-restore`.
    pub fn find() -> anyhow::Result<Self> {
        for (save, restore) in [
            ("iptables-nft-save", "iptables-nft-restore"),
            ("iptables-save", "iptables-restore"),
        ] {
            if let (Some(save), Some(restore)) = (on_path(save), on_path(restore)) {
                return Ok(Self { save, restore });
            }
        }
        bail!(
            "iptables-save and iptables-restore were not found on PATH; install iptables \
             (e.g. `apt-get install iptables`)"
        )
    }

    /// The `nat` table as `iptables-save` prints it.
    pub fn save_nat(&self) -> anyhow::Result<String> {
        let output = Command::new(&self.save)
            .args(["-t", "nat"])
            .output()
            .with_context(|| format!("cannot run {}", self.save.display()))?;
        if !output.status.success() {
            bail!(
                "{} -t nat failed: {}",
                self.save.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8(output.stdout).with_context(|| {
            format!(
                "{} printed something that is not UTF-8",
                self.save.display()
            )
        })
    }

    /// Applies `script` with `iptables-restore --noflush`: all of it, or
    /// (when any line fails) none of it.
    pub fn restore(&self, script: &str) -> anyhow::Result<()> {
        let mut child = Command::new(&self.restore)
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.restore.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .with_context(|| format!("cannot write to {}", self.restore.display()))?;
        }
        let output = child
            .wait_with_output()
            .with_context(|| format!("{} did not finish", self.restore.display()))?;
        if !output.status.success() {
            bail!(
                "{} --noflush refused the rules (nothing was changed): {}",
                self.restore.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
