//! The HAProxy pair (Debian's `haproxy` package): a caller-side and a
//! server-side HAProxy doing the Weft pair's job, plaintext or with mutual
//! TLS between the two (certificates from [`super::tls`]). HTTP lanes run
//! in `mode http` (HTTP/2 with `proto h2` on both hops), TCP in `mode tcp`.
//! `http-reuse always` lets every request use a pooled connection to the
//! next hop, as Weft's proxies do (HAProxy's default, `safe`, opens a new one
//! for the first request of each client connection).

use std::{path::Path, process::Command, time::Duration};

use anyhow::Context;

use super::{
    backend::Backend,
    process::{Spawn, free_port, local, wait_port},
    tls::{self, TlsFiles},
    topology::{Ctx, Lanes, Running},
};

const BIN: &str = "/usr/sbin/haproxy";

pub fn unavailable() -> Option<String> {
    (!Path::new(BIN).exists())
        .then(|| format!("{BIN} not installed (bench/run installs Debian's haproxy)"))
}

/// The lanes, in order: name, whether HTTP/2 end to end, mode.
const LANES: [(&str, bool, &str); 4] = [
    ("http", false, "http"),
    ("h2", true, "http"),
    ("grpc", true, "http"),
    ("tcp", false, "tcp"),
];

/// `maxconn` that fits the open-file limit HAProxy inherits (it needs two
/// descriptors per proxied connection and cannot raise the hard limit).
pub fn maxconn(nofile: Option<u64>) -> u64 {
    nofile.map_or(100_000, |n| {
        (n.saturating_sub(200) / 2).clamp(1_000, 100_000)
    })
}

fn global() -> String {
    format!(
        "global\n  maxconn {}\n\n\
         defaults\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n  \
         timeout http-keep-alive 120s\n  http-reuse always\n\n",
        maxconn(crate::procfs::open_files_limit())
    )
}

/// Caller-side config: lane `i` listens on `front[i]` and calls the
/// server-side HAProxy at `server[i]`.
pub fn caller_config(front: [u16; 4], server: [u16; 4], tls: Option<&TlsFiles>) -> String {
    let mut cfg = global();
    for (i, (name, h2, mode)) in LANES.iter().enumerate() {
        let bind_proto = if *h2 { " proto h2" } else { "" };
        let mut server_opts = String::new();
        if let Some(t) = tls {
            server_opts.push_str(&format!(
                " ssl crt {} ca-file {} verify required verifyhost localhost sni str(localhost)",
                t.client.display(),
                t.ca.display()
            ));
            if *mode == "http" {
                server_opts.push_str(if *h2 { " alpn h2" } else { " alpn http/1.1" });
            }
        }
        if *h2 {
            server_opts.push_str(" proto h2");
        }
        cfg.push_str(&format!(
            "frontend {name}_in\n  mode {mode}\n  bind 127.0.0.1:{}{bind_proto}\n  default_backend {name}_out\n\n\
             backend {name}_out\n  mode {mode}\n  server peer 127.0.0.1:{}{server_opts}\n\n",
            front[i], server[i]
        ));
    }
    cfg
}

/// Server-side config: lane `i` listens on `front[i]` and calls the backend.
pub fn server_config(front: [u16; 4], backend: &Backend, tls: Option<&TlsFiles>) -> String {
    let app = [backend.http, backend.http, backend.grpc, backend.tcp];
    let mut cfg = global();
    for (i, (name, h2, mode)) in LANES.iter().enumerate() {
        let mut bind_opts = String::new();
        if let Some(t) = tls {
            bind_opts.push_str(&format!(
                " ssl crt {} ca-file {} verify required",
                t.server.display(),
                t.ca.display()
            ));
            if *mode == "http" {
                bind_opts.push_str(if *h2 { " alpn h2" } else { " alpn http/1.1" });
            }
        }
        if *h2 {
            bind_opts.push_str(" proto h2");
        }
        let server_proto = if *h2 { " proto h2" } else { "" };
        cfg.push_str(&format!(
            "frontend {name}_in\n  mode {mode}\n  bind 127.0.0.1:{}{bind_opts}\n  default_backend {name}_app\n\n\
             backend {name}_app\n  mode {mode}\n  server app 127.0.0.1:{}{server_proto}\n\n",
            front[i], app[i]
        ));
    }
    cfg
}

fn check(cfg: &Path) -> anyhow::Result<()> {
    let out = Command::new(BIN).arg("-c").arg("-f").arg(cfg).output()?;
    anyhow::ensure!(
        out.status.success(),
        "haproxy rejects {}: {}{}",
        cfg.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

pub async fn start(ctx: &Ctx, backend: &Backend, with_tls: bool) -> anyhow::Result<Running> {
    let tls = if with_tls {
        Some(tls::generate(&ctx.dir.join("tls")).context("cannot make certificates")?)
    } else {
        None
    };
    let front = [free_port(), free_port(), free_port(), free_port()];
    let server = [free_port(), free_port(), free_port(), free_port()];
    let suffix = if with_tls { "-tls" } else { "" };
    let mut proxies = Vec::new();
    for (role, cfg, ports) in [
        (
            "server",
            server_config(server, backend, tls.as_ref()),
            server,
        ),
        ("caller", caller_config(front, server, tls.as_ref()), front),
    ] {
        let file = ctx.dir.join(format!("haproxy{suffix}-{role}.cfg"));
        std::fs::write(&file, cfg)?;
        check(&file)?;
        let proc = Spawn::new(
            &format!("haproxy{suffix}-{role}"),
            Path::new(BIN),
            &ctx.logs,
        )
        .args(["-db", "-f"])
        .args([file.display()])
        .cpus(ctx.proxy_cpus.as_deref())
        .start()?;
        for port in ports {
            wait_port(local(port), Duration::from_secs(10))
                .await
                .with_context(|| proc.log_tail())?;
        }
        proxies.push((role.to_owned(), proc));
    }
    let [http, h2, grpc, tcp] = front.map(|p| Some(local(p)));
    Ok(Running {
        lanes: Lanes {
            http,
            h2,
            grpc,
            tcp,
        },
        proxies,
        others: Vec::new(),
        weft: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn plaintext_configs_wire_each_lane_to_the_next_hop() {
        let caller = caller_config([1, 2, 3, 4], [11, 12, 13, 14], None);
        assert!(caller.contains("bind 127.0.0.1:2 proto h2"));
        assert!(caller.contains("server peer 127.0.0.1:13 proto h2"));
        assert!(caller.contains("mode tcp\n  bind 127.0.0.1:4\n"));
        assert!(!caller.contains("ssl"));
        let server = server_config([11, 12, 13, 14], &Backend::fake(80, 81, 82), None);
        assert!(server.contains("server app 127.0.0.1:80\n"));
        assert!(server.contains("server app 127.0.0.1:81 proto h2"));
        assert!(server.contains("server app 127.0.0.1:82\n"));
    }

    #[test]
    fn maxconn_fits_the_file_limit() {
        assert_eq!(maxconn(Some(20_000)), 9_900);
        assert_eq!(maxconn(Some(1_048_576)), 100_000);
        assert_eq!(maxconn(Some(1_024)), 1_000);
        assert_eq!(maxconn(None), 100_000);
    }

    #[test]
    fn tls_configs_verify_both_ways() {
        let t = TlsFiles {
            ca: PathBuf::from("/t/ca.pem"),
            server: PathBuf::from("/t/server.pem"),
            client: PathBuf::from("/t/client.pem"),
        };
        let caller = caller_config([1, 2, 3, 4], [11, 12, 13, 14], Some(&t));
        assert!(caller.contains(
            "server peer 127.0.0.1:11 ssl crt /t/client.pem ca-file /t/ca.pem verify required"
        ));
        assert!(caller.contains("alpn h2 proto h2"));
        let server = server_config([11, 12, 13, 14], &Backend::fake(80, 81, 82), Some(&t));
        assert!(server.contains(
            "bind 127.0.0.1:14 ssl crt /t/server.pem ca-file /t/ca.pem verify required\n"
        ));
    }
}
