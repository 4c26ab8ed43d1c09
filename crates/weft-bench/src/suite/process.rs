//! Child processes of the harness: output to a log file, optionally pinned
//! to CPUs with `taskset` (which execs, so the pid is the program's), and
//! killed when dropped. `bench/run` also kills the whole process group on
//! exit, Ctrl-C or failure, so nothing outlives a run.

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use anyhow::Context;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, ChildStdout, Command},
};

/// A running child process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

/// How to start one.
#[derive(Debug, Clone)]
pub struct Spawn<'a> {
    pub name: &'a str,
    pub program: &'a Path,
    pub args: Vec<String>,
    /// `taskset -c CPUS`, if set.
    pub cpus: Option<&'a str>,
    pub log_dir: &'a Path,
    pub env: Vec<(&'a str, String)>,
    /// Keep stdout as a pipe (read with [`Proc::stdout`]) instead of the log.
    pub pipe_stdout: bool,
    /// Give the child a stdin pipe (closing it tells `hold` to stop).
    pub pipe_stdin: bool,
}

impl<'a> Spawn<'a> {
    pub fn new(name: &'a str, program: &'a Path, log_dir: &'a Path) -> Self {
        Self {
            name,
            program,
            args: Vec::new(),
            cpus: None,
            log_dir,
            env: Vec::new(),
            pipe_stdout: false,
            pipe_stdin: false,
        }
    }

    pub fn args<S: ToString>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    pub fn cpus(mut self, cpus: Option<&'a str>) -> Self {
        self.cpus = cpus;
        self
    }

    pub fn env(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    pub fn pipe_stdout(mut self) -> Self {
        self.pipe_stdout = true;
        self
    }

    pub fn pipe_stdin(mut self) -> Self {
        self.pipe_stdin = true;
        self
    }

    pub fn start(self) -> anyhow::Result<Proc> {
        std::fs::create_dir_all(self.log_dir)?;
        let log = self.log_dir.join(format!("{}.log", self.name));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = match self.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(self.program);
                c
            }
            None => Command::new(self.program),
        };
        cmd.args(&self.args)
            .stderr(err)
            .kill_on_drop(true)
            .stdin(if self.pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        if self.pipe_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(out);
        }
        for (k, v) in self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Proc {
            name: self.name.to_owned(),
            pid,
            log,
            child,
        })
    }
}

impl Drop for Proc {
    /// Kills the process's descendants too (nginx workers outlive a killed
    /// master); the process itself is killed by tokio (`kill_on_drop`).
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        let descendants: Vec<String> = crate::procfs::with_descendants(self.pid)
            .into_iter()
            .filter(|&p| p != self.pid)
            .map(|p| p.to_string())
            .collect();
        if !descendants.is_empty() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&descendants)
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Proc {
    /// The stdout pipe (once), if started with `pipe_stdout`.
    pub fn stdout(&mut self) -> Option<BufReader<ChildStdout>> {
        self.child.stdout.take().map(BufReader::new)
    }

    /// Closes the child's stdin, if it had a pipe.
    pub fn close_stdin(&mut self) {
        self.child.stdin.take();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit (up to `timeout`), then kills.
    pub async fn wait_or_kill(&mut self, timeout: Duration) {
        if tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Asks the process to stop (SIGTERM), as an operator or a service
    /// manager would; false if it could not be asked (or already exited).
    /// A Weft proxy drains and exits on its own, and that exit is when a
    /// profiling build writes its profile (`bench/run`'s PGO training).
    pub fn ask_to_stop(&mut self) -> bool {
        self.is_running()
            && std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Reads stdout lines until one starts with `prefix`; that line.
pub async fn wait_line(
    out: &mut BufReader<ChildStdout>,
    prefix: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let read = async {
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(
                out.read_line(&mut line).await? > 0,
                "exited before printing {prefix:?}"
            );
            if line.starts_with(prefix) {
                return Ok(line.trim_end().to_owned());
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .with_context(|| format!("no {prefix:?} line within {timeout:?}"))?
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{addr} did not accept connections within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port that was free a moment ago and that this process has
/// not handed out before.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(0, |a| a.port());
        let mut set = given.lock().unwrap_or_else(|p| p.into_inner());
        if port != 0 && set.insert(port) {
            return port;
        }
    }
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of this test process's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weft-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    async fn wait_for(file: &Path) {
        for _ in 0..500 {
            if file.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} never appeared", file.display());
    }

    /// What PGO training relies on: a stopped proxy gets to run its exit
    /// path (where an instrumented build writes its profile), rather than
    /// being killed.
    #[tokio::test]
    async fn a_process_asked_to_stop_runs_its_exit_path() {
        let dir = scratch("stop");
        let (ready, stopped) = (dir.join("ready"), dir.join("stopped"));
        let script = format!(
            "trap 'echo bye > {}; exit 0' TERM; touch {}; while :; do sleep 0.05; done",
            stopped.display(),
            ready.display()
        );
        let mut p = Spawn::new("trapper", Path::new("bash"), &dir)
            .args(["-c", &script])
            .start()
            .unwrap();
        wait_for(&ready).await;
        assert!(p.ask_to_stop());
        p.wait_or_kill(Duration::from_secs(10)).await;
        assert!(!p.is_running());
        let said = std::fs::read_to_string(&stopped).unwrap_or_default();
        assert_eq!(said.trim(), "bye", "killed rather than stopped");
        assert!(!p.ask_to_stop(), "an exited process cannot be asked again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
