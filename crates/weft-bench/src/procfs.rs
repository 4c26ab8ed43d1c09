//! What the harness reads from `/proc`: CPU time (`utime + stime` of
//! `/proc/PID/stat`, all threads), resident memory (`VmRSS` of
//! `/proc/PID/status`), child processes (nginx workers) and open-file limits.

use std::{path::Path, sync::OnceLock};

use anyhow::Context;

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its closing parenthesis.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), ... utime (14), stime (15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `utime + stime + cutime + cstime` (fields 14-17): a process's own CPU
/// time and that of the children it has waited for.
pub fn parse_stat_ticks_with_children(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut sum = 0;
    for i in 11..=14 {
        sum += fields.get(i)?.parse::<i64>().ok()?.max(0) as u64;
    }
    Some(sum)
}

/// Busy ticks of the whole machine from the `cpu` line of `/proc/stat`:
/// user, nice, system and steal (the hypervisor took it). Interrupt and
/// softirq time is left out: the loopback traffic of the benchmark itself
/// is processed there and charged to no process, so it would otherwise
/// count as someone else's.
pub fn parse_machine_busy(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let v = v.get(0..8)?;
    Some(v[0] + v[1] + v[2] + v[7])
}

/// The parent pid (field 4) from the text of `/proc/PID/stat`.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` in bytes from the text of `/proc/PID/status`.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// The soft limit on open files from the text of `/proc/PID/limits`.
pub fn parse_limits_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if that fails: it is 100
/// on every Linux the harness targets).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// CPU seconds used so far by `pid` (all its threads).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let ticks = parse_stat_ticks(&text).with_context(|| format!("cannot parse {path}"))?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

/// CPU seconds the whole machine spent busy so far.
pub fn machine_busy_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine_busy(&s))
        .map_or(0.0, |t| t as f64 / clock_ticks() as f64)
}

/// CPU seconds of this process and the children it has reaped.
pub fn own_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_ticks_with_children(&s))
        .map_or(0.0, |t| t as f64 / clock_ticks() as f64)
}

/// Resident memory of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status_rss(&text).with_context(|| format!("no VmRSS in {path}"))
}

/// `pid` and all its descendants (nginx's master and workers, say).
pub fn with_descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = Path::new("/proc").join(child.to_string()).join("stat");
            if let Some(ppid) = std::fs::read_to_string(stat)
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
            {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// CPU seconds of `pid` and its descendants (missing processes count 0).
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    with_descendants(pid)
        .into_iter()
        .filter_map(|p| cpu_seconds(p).ok())
        .sum()
}

/// Resident memory of `pid` and its descendants.
pub fn tree_rss_bytes(pid: u32) -> u64 {
    with_descendants(pid)
        .into_iter()
        .filter_map(|p| rss_bytes(p).ok())
        .sum()
}

/// Open sockets of `pid` and its descendants (`/proc/PID/fd` links).
pub fn tree_sockets(pid: u32) -> usize {
    with_descendants(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .flat_map(|dir| dir.flatten())
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> Option<u64> {
    parse_limits_nofile(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (weft (proxy) x) S 4200 4242 4200 0 -1 4194560 1234 0 0 0 \
                        250 75 0 0 20 0 3 0 123456 987654321 2048 18446744073709551615";

    #[test]
    fn stat_ticks_and_ppid_survive_odd_names() {
        assert_eq!(parse_stat_ticks(STAT), Some(325));
        assert_eq!(parse_stat_ppid(STAT), Some(4200));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn children_and_machine_ticks() {
        assert_eq!(parse_stat_ticks_with_children(STAT), Some(325));
        let with_children = STAT.replace(" 250 75 0 0 ", " 250 75 30 5 ");
        assert_eq!(parse_stat_ticks_with_children(&with_children), Some(360));
        let stat = "cpu  100 5 50 1000 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(165));
        assert_eq!(parse_machine_busy("intr 1"), None);
    }

    #[test]
    fn status_rss_in_bytes() {
        let status = "Name:\tweft\nVmPeak:\t  20000 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(status), Some(10_485_760));
        assert_eq!(parse_status_rss("Name:\tzombie\n"), None);
    }

    #[test]
    fn nofile_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            65536                65536                files\n";
        assert_eq!(parse_limits_nofile(limits), Some(65536));
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(with_descendants(me).contains(&me));
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(tree_sockets(me) >= 1);
    }
}
