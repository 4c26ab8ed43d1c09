//! What machine a run happened on, and the versions of what it compared.

use std::{collections::BTreeMap, path::Path, process::Command, time::SystemTime};

use crate::results::Machine;

/// The first line a command prints (stdout, else stderr); empty on failure.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// `model name` from `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

pub fn collect(oha: &Path, repo: &Path) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let mut versions = BTreeMap::new();
    let oha = oha.display().to_string();
    for (name, program, args) in [
        ("oha", oha.as_str(), &["--version"][..]),
        ("haproxy", "/usr/sbin/haproxy", &["-v"][..]),
        ("nginx", "/usr/sbin/nginx", &["-v"][..]),
        ("rustc", "rustc", &["--version"][..]),
        ("openssl", "openssl", &["version"][..]),
    ] {
        versions.insert(name.to_owned(), first_line(program, args));
    }
    let repo = repo.display().to_string();
    let commit = first_line("git", &["-C", &repo, "rev-parse", "--short", "HEAD"]);
    let dirty = !first_line(
        "git",
        &["-C", &repo, "status", "--porcelain", "--", "crates"],
    )
    .is_empty();
    Machine {
        // Not available_parallelism: the suite itself runs pinned to one CPU.
        nproc: read("/proc/cpuinfo")
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count(),
        cpu_model: cpu_model(&read("/proc/cpuinfo")),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        weft_commit: if dirty {
            format!("{commit} (with uncommitted changes)")
        } else {
            commit
        },
        versions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model() {
        let info =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(cpu_model(info), "Intel(R) Xeon(R) Processor");
        assert_eq!(cpu_model(""), "unknown");
    }
}
