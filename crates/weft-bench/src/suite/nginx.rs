//! The nginx pair (Debian's `nginx-light`, plus `libnginx-mod-stream` for
//! TCP): HTTP/1.1 with upstream keep-alive, gRPC with `grpc_pass` (HTTP/2 on
//! both hops), TCP with the stream module. No HTTP/2 lane: nginx proxies
//! plain HTTP to upstreams over HTTP/1.1 only.

use std::{path::Path, process::Command, time::Duration};

use super::{
    backend::Backend,
    process::{Spawn, free_port, local, wait_port},
    topology::{Ctx, Lanes, Running},
};

const BIN: &str = "/usr/sbin/nginx";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

pub fn unavailable() -> Option<String> {
    (!Path::new(BIN).exists())
        .then(|| format!("{BIN} not installed (bench/run installs Debian's nginx-light)"))
}

/// Ports of one nginx: HTTP, gRPC, TCP (`None` without the stream module).
#[derive(Debug, Clone, Copy)]
pub struct NginxPorts {
    pub http: u16,
    pub grpc: u16,
    pub tcp: Option<u16>,
}

/// An nginx config listening on `listen` and proxying to `to`.
pub fn config(dir: &Path, role: &str, listen: NginxPorts, to: NginxPorts) -> String {
    let d = dir.display();
    let mut cfg = String::new();
    if listen.tcp.is_some() {
        cfg.push_str(&format!("load_module {STREAM_MODULE};\n"));
    }
    cfg.push_str(&format!(
        "user root;\ndaemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 200000;\n\
         pid {d}/nginx-{role}.pid;\nerror_log {d}/nginx-{role}-error.log warn;\n\
         events {{ worker_connections 100000; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-{role}-body;\n  \
         proxy_temp_path {d}/nginx-{role}-proxy;\n  client_max_body_size 0;\n  \
         keepalive_requests 1000000;\n  keepalive_timeout 120s;\n  \
         upstream http_up {{ server 127.0.0.1:{}; keepalive 128; }}\n  \
         upstream grpc_up {{ server 127.0.0.1:{}; keepalive 128; }}\n  \
         server {{\n    listen 127.0.0.1:{};\n    location / {{\n      proxy_pass http://http_up;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      \
         proxy_request_buffering off;\n      proxy_buffering off;\n    }}\n  }}\n  \
         server {{\n    listen 127.0.0.1:{} http2;\n    location / {{ grpc_pass grpc://grpc_up; }}\n  }}\n}}\n",
        to.http, to.grpc, listen.http, listen.grpc
    ));
    if let (Some(l), Some(t)) = (listen.tcp, to.tcp) {
        cfg.push_str(&format!(
            "stream {{\n  server {{ listen 127.0.0.1:{l}; proxy_pass 127.0.0.1:{t}; }}\n}}\n"
        ));
    }
    cfg
}

fn check(file: &Path) -> anyhow::Result<()> {
    let out = Command::new(BIN).arg("-t").arg("-c").arg(file).output()?;
    anyhow::ensure!(
        out.status.success(),
        "nginx rejects {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

pub async fn start(ctx: &Ctx, backend: &Backend) -> anyhow::Result<Running> {
    let stream = Path::new(STREAM_MODULE).exists();
    let port = |yes: bool| yes.then(free_port);
    let caller = NginxPorts {
        http: free_port(),
        grpc: free_port(),
        tcp: port(stream),
    };
    let server = NginxPorts {
        http: free_port(),
        grpc: free_port(),
        tcp: port(stream),
    };
    let app = NginxPorts {
        http: backend.http,
        grpc: backend.grpc,
        tcp: Some(backend.tcp),
    };
    let mut proxies = Vec::new();
    for (role, listen, to) in [("server", server, app), ("caller", caller, server)] {
        let file = ctx.dir.join(format!("nginx-{role}.conf"));
        std::fs::write(&file, config(&ctx.dir, role, listen, to))?;
        for temp in ["body", "proxy"] {
            std::fs::create_dir_all(ctx.dir.join(format!("nginx-{role}-{temp}")))?;
        }
        check(&file)?;
        let proc = Spawn::new(&format!("nginx-{role}"), Path::new(BIN), &ctx.logs)
            .args(["-c"])
            .args([file.display()])
            .cpus(ctx.proxy_cpus.as_deref())
            .start()?;
        for p in [Some(listen.http), Some(listen.grpc), listen.tcp]
            .into_iter()
            .flatten()
        {
            wait_port(local(p), Duration::from_secs(10)).await?;
        }
        proxies.push((role.to_owned(), proc));
    }
    Ok(Running {
        lanes: Lanes {
            http: Some(local(caller.http)),
            h2: None,
            grpc: Some(local(caller.grpc)),
            tcp: caller.tcp.map(local),
        },
        proxies,
        others: Vec::new(),
        weft: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_proxies_each_lane() {
        let listen = NginxPorts {
            http: 1,
            grpc: 2,
            tcp: Some(3),
        };
        let to = NginxPorts {
            http: 11,
            grpc: 12,
            tcp: Some(13),
        };
        let cfg = config(Path::new("/run/x"), "caller", listen, to);
        assert!(cfg.starts_with("load_module"));
        assert!(cfg.contains("upstream http_up { server 127.0.0.1:11; keepalive 128; }"));
        assert!(cfg.contains("listen 127.0.0.1:2 http2;"));
        assert!(cfg.contains("listen 127.0.0.1:3; proxy_pass 127.0.0.1:13;"));
        let no_stream = config(
            Path::new("/run/x"),
            "caller",
            NginxPorts {
                tcp: None,
                ..listen
            },
            to,
        );
        assert!(!no_stream.contains("stream {"));
        assert!(!no_stream.contains("load_module"));
    }
}
