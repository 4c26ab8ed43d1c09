//! Hosts for multi-host tests: network namespaces, each with its own
//! address on one bridge, as a small network of machines would be.
//!
//! The bridge lives in a namespace of its own (the "switch"), so nothing
//! is added to the test machine's own network. Namespace names carry the
//! test process's id and a counter, so parallel tests never collide, and
//! [`Network`] deletes its namespaces (killing what runs in them) when
//! dropped, also when the test failed. Namespaces left by a test process
//! that was killed are removed by the next [`Network::create`].
//!
//! These tests need root and a few tools; [`require`] fails the test,
//! never skips it, when something is missing.

pub mod pcap;
pub mod resolver;

use std::{
    net::Ipv4Addr,
    path::Path,
    process::Output,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::process::TestProcess;

/// What the namespace tests run, besides the weft binary.
pub const REQUIRED_TOOLS: [&str; 6] = [
    "ip",
    "iptables-save",
    "iptables-restore",
    "tcpdump",
    "setpriv",
    "curl",
];
/// Every namespace a [`Network`] makes starts with this and the pid.
const PREFIX: &str = "weftnet";

/// Fails (panics) with what is missing, unless the process is root and
/// every tool of [`REQUIRED_TOOLS`] is on `PATH`. Install them with
/// `scripts/install-test-deps`.
pub fn require() {
    let mut missing = Vec::new();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        missing.push("root (these tests create network namespaces and iptables rules)".to_owned());
    }
    for tool in REQUIRED_TOOLS {
        if !on_path(tool) {
            missing.push(format!("the `{tool}` command"));
        }
    }
    assert!(
        missing.is_empty(),
        "multi-host tests need {}; run scripts/install-test-deps as root",
        missing.join(", ")
    );
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// One host: a namespace with `eth0` on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: String,
    pub ip: Ipv4Addr,
    /// The bridge's end of this host's link, in the switch namespace.
    port: String,
}

impl Host {
    /// The host's IPv6 address: `fd77::N` for `10.77.0.N`.
    pub fn ip6(&self) -> std::net::Ipv6Addr {
        std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, u16::from(self.ip.octets()[3]))
    }
}

/// Hosts 10.77.0.1, 10.77.0.2, ... (and fd77::1, fd77::2, ...) on one bridge.
#[derive(Debug)]
pub struct Network {
    switch: String,
    hosts: Vec<Host>,
}

impl Network {
    /// `count` hosts on a new bridge. Each host has loopback up and a
    /// default route through its link, so any address (a mesh service's
    /// virtual IP among them) can be dialled.
    pub async fn create(count: u8) -> anyhow::Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        remove_stale().await;
        let base = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut network = Network {
            switch: format!("{base}-sw"),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &network.switch]).await?;
        ip(&[
            "-n",
            &network.switch,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
        ])
        .await?;
        ip(&["-n", &network.switch, "link", "set", "br0", "up"]).await?;
        for i in 1..=count {
            let host = Host {
                ns: format!("{base}-h{i}"),
                ip: Ipv4Addr::new(10, 77, 0, i),
                port: format!("p{i}"),
            };
            // Pushed first, so that a failure below still deletes it.
            network.hosts.push(host.clone());
            ip(&["netns", "add", &host.ns]).await?;
            ip(&[
                "-n",
                &network.switch,
                "link",
                "add",
                &host.port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.ns,
            ])
            .await?;
            ip(&[
                "-n",
                &network.switch,
                "link",
                "set",
                &host.port,
                "master",
                "br0",
                "up",
            ])
            .await?;
            let cidr = format!("{}/24", host.ip);
            ip(&["-n", &host.ns, "addr", "add", &cidr, "dev", "eth0"]).await?;
            // No duplicate address detection: the address is usable at once.
            let cidr6 = format!("{}/64", host.ip6());
            ip(&[
                "-n", &host.ns, "-6", "addr", "add", &cidr6, "dev", "eth0", "nodad",
            ])
            .await?;
            ip(&["-n", &host.ns, "link", "set", "eth0", "up"]).await?;
            ip(&["-n", &host.ns, "link", "set", "lo", "up"]).await?;
            ip(&["-n", &host.ns, "route", "add", "default", "dev", "eth0"]).await?;
        }
        Ok(network)
    }

    /// Host `i`, counting from 1 like the addresses.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i - 1]
    }

    /// Runs `args` in `host`'s namespace, as `uid` when given (root otherwise).
    pub async fn exec(
        &self,
        host: &Host,
        uid: Option<u32>,
        args: &[&str],
    ) -> anyhow::Result<Output> {
        let argv = in_namespace(&host.ns, uid, args);
        Command::new("ip")
            .args(&argv)
            .output()
            .await
            .with_context(|| format!("cannot run {args:?} in {}", host.ns))
    }

    /// Starts `bin args...` in `host`'s namespace as `uid` (root when
    /// `None`), logging to `dir/name.log`. Killed when dropped.
    pub fn spawn(
        &self,
        host: &Host,
        uid: Option<u32>,
        name: &str,
        bin: &Path,
        args: &[String],
        dir: &Path,
    ) -> anyhow::Result<TestProcess> {
        let bin = bin.display().to_string();
        let mut command: Vec<&str> = vec![&bin];
        command.extend(args.iter().map(String::as_str));
        let argv = in_namespace(&host.ns, uid, &command);
        TestProcess::spawn(Path::new("ip"), name, &argv, dir, &[])
    }

    /// Starts a capture of every TCP packet on the bridge into `file`,
    /// once tcpdump says it is listening. Stop it with `terminate`.
    pub async fn capture(&self, file: &Path, dir: &Path) -> anyhow::Result<TestProcess> {
        let args: Vec<String> = [
            "netns",
            "exec",
            &self.switch,
            "tcpdump",
            // Every packet is written as it comes: a capture stopped right
            // after the traffic must not lose what the kernel buffered.
            "--immediate-mode",
            "-U",
            "-n",
            "-i",
            "br0",
            "-w",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([file.display().to_string(), "tcp".to_owned()])
        .collect();
        let process = TestProcess::spawn(Path::new("ip"), "tcpdump", &args, dir, &[])?;
        crate::wait::until(
            "tcpdump listening",
            std::time::Duration::from_secs(10),
            || async { process.log_text().contains("listening on").then_some(()) },
        )
        .await
        .with_context(|| process.log_text())?;
        Ok(process)
    }

    /// Makes `nameserver` the resolver of processes started in `host` from
    /// now on (`ip netns exec` mounts `/etc/netns/NS/resolv.conf` over
    /// `/etc/resolv.conf`). Removed with the network.
    pub fn set_resolver(&self, host: &Host, nameserver: Ipv4Addr) -> anyhow::Result<()> {
        let dir = Path::new("/etc/netns").join(&host.ns);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )
        .with_context(|| format!("cannot write {}/resolv.conf", dir.display()))
    }

    /// Takes `host`'s link down (or up) at the bridge: to the others, the
    /// host vanishes without a word, as when its cable is pulled.
    pub async fn set_link(&self, host: &Host, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch, "link", "set", &host.port, state]).await
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self
            .hosts
            .iter()
            .map(|h| h.ns.as_str())
            .chain([self.switch.as_str()])
        {
            delete_namespace(ns);
        }
    }
}

/// `ip netns exec NS [setpriv ...] ARGS...`: setpriv drops to `uid` (and
/// the same gid, no supplementary groups) before running the command.
fn in_namespace(ns: &str, uid: Option<u32>, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["netns".to_owned(), "exec".to_owned(), ns.to_owned()];
    if let Some(uid) = uid {
        argv.extend([
            "setpriv".to_owned(),
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
        ]);
    }
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

async fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .context("cannot run ip (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Kills what still runs in `ns`, then deletes it and its `/etc/netns`
/// files. Synchronous: called
/// from `Drop`, possibly while a test is panicking.
fn delete_namespace(ns: &str) {
    if let Ok(out) = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
    {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
    }
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", ns])
        .status();
    // What `set_resolver` wrote, if anything.
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
}

/// Namespaces of test processes that no longer run.
async fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output().await else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('x').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(name);
        }
    }
}
