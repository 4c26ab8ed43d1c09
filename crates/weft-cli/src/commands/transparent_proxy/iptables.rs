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

use super::rules::Family;

/// The pair of commands one backend consists of.
#[derive(Debug, Clone)]
pub struct Backend {
    save: PathBuf,
    restore: PathBuf,
}

impl Backend {
    /// Finds `iptables-nft-save`/`-restore` on `PATH`, else
    /// `iptables-save`/`-restore` (`ip6tables-*` for IPv6); `None` when
    /// neither pair is installed.
    pub fn find(family: Family) -> Option<Self> {
        let prefix = match family {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        };
        [format!("{prefix}-nft"), prefix.to_owned()]
            .iter()
            .find_map(|base| {
                let save = on_path(&format!("{base}-save"))?;
                let restore = on_path(&format!("{base}-restore"))?;
                Some(Self { save, restore })
            })
    }

    /// [`Backend::find`] for IPv4, which transparent proxying cannot do without.
    pub fn require_v4() -> anyhow::Result<Self> {
        match Self::find(Family::V4) {
            Some(backend) => Ok(backend),
            None => bail!(
                "iptables-save and iptables-restore were not found on PATH; install iptables \
                 (e.g. `apt-get install iptables`)"
            ),
        }
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
