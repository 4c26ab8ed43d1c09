//! The Weft pair: a control plane, a server-side proxy whose inbounds lead
//! to the backend, and a caller-side proxy whose outbounds the client uses.
//!
//! # The mTLS pair
//!
//! [`Security::Mtls`] is in every report. It runs only when [`mesh`] gives
//! a Mesh for it, that is when the `weft` under test can run a mesh with a
//! builtin CA (its control plane takes `--ca-key-file`); otherwise it is
//! listed as `not available yet`. Everything mTLS needs is here: the Mesh
//! (`mtls: {mode: strict}`), and a check that the server proxy's inbound
//! refuses plaintext, so that what is measured really is mTLS. The control
//! plane runs with `--dp-auth none` (see [`super::weftcli`]); with tokens,
//! [`proxy_args`] would pass `--token-file`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    backend::Backend,
    process::{Spawn, free_port, local},
    topology::{Ctx, Lanes, Running},
    weftcli::Capabilities,
};
use crate::{cpscale, rest};

/// Whether the proxies talk plaintext or mTLS to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plaintext,
    Mtls,
}

/// The Mesh resource for `security`; `None` while this `weft` cannot do it.
pub fn mesh(security: Security, caps: &Capabilities) -> Option<Value> {
    match security {
        Security::Plaintext => Some(json!({"type": "Mesh", "name": "default"})),
        Security::Mtls if caps.ca_key_file => Some(json!({
            "type": "Mesh", "name": "default", "mtls": {"mode": "strict"},
        })),
        Security::Mtls => None,
    }
}

/// Why a Weft topology cannot run, if it cannot.
pub fn unavailable(security: Security, caps: &Capabilities) -> Option<String> {
    mesh(security, caps).is_none().then(|| {
        "not available yet: this weft has no mTLS between proxies \
         (it plugs in at crates/weft-bench/src/suite/weft.rs, `mesh`)"
            .into()
    })
}

/// Services of the four lanes.
pub const SERVICES: [(&str, &str); 4] = [
    ("bench-http", "http"),
    ("bench-h2", "http2"),
    ("bench-grpc", "grpc"),
    ("bench-tcp", "tcp"),
];

/// Ports of one Weft pair.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Server proxy inbounds, in [`SERVICES`] order.
    pub inbound: [u16; 4],
    /// Caller proxy outbounds, in [`SERVICES`] order.
    pub outbound: [u16; 4],
    pub caller_inbound: u16,
    pub caller_app: u16,
    pub server_admin: u16,
    pub caller_admin: u16,
}

impl Ports {
    pub fn fresh() -> Self {
        Self {
            inbound: [free_port(), free_port(), free_port(), free_port()],
            outbound: [free_port(), free_port(), free_port(), free_port()],
            caller_inbound: free_port(),
            caller_app: free_port(),
            server_admin: free_port(),
            caller_admin: free_port(),
        }
    }
}

/// The server-side Dataplane: one inbound per lane, to the backend.
pub fn server_dataplane(ports: &Ports, backend: &Backend) -> Value {
    let app = [backend.http, backend.http, backend.grpc, backend.tcp];
    let inbound: Vec<Value> = SERVICES
        .iter()
        .zip(ports.inbound.iter().zip(app))
        .map(|((service, protocol), (port, app))| {
            json!({"port": port, "servicePort": app, "tags": {"service": service, "protocol": protocol}})
        })
        .collect();
    json!({
        "type": "Dataplane", "mesh": "default", "name": "bench-server",
        "networking": {"address": "127.0.0.1", "inbound": inbound, "admin": {"port": ports.server_admin}},
    })
}

/// The caller-side Dataplane: one outbound per lane.
pub fn caller_dataplane(ports: &Ports) -> Value {
    let outbound: Vec<Value> = SERVICES
        .iter()
        .zip(ports.outbound)
        .map(|((service, protocol), port)| json!({"port": port, "service": service, "protocol": protocol}))
        .collect();
    json!({
        "type": "Dataplane", "mesh": "default", "name": "bench-caller",
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": ports.caller_inbound, "servicePort": ports.caller_app,
                         "tags": {"service": "bench-client", "protocol": "http"}}],
            "outbound": outbound,
            "admin": {"port": ports.caller_admin},
        },
    })
}

/// The executable Weft proxies run as: `weft-proxy`, or the all-in-one
/// `weft` with its `proxy` subcommand.
#[derive(Debug, Clone)]
pub struct ProxyExe {
    pub path: PathBuf,
    /// Whether `proxy` goes before the arguments.
    pub subcommand: bool,
}

impl ProxyExe {
    /// `explicit` if given; else `weft-proxy` beside `weft` when it exists,
    /// since that is what runs beside workloads; else `weft proxy`.
    pub fn choose(explicit: Option<PathBuf>, weft: &Path) -> Self {
        let sibling = weft.with_file_name("weft-proxy");
        let path = explicit.unwrap_or_else(|| {
            if sibling.is_file() {
                sibling
            } else {
                weft.to_path_buf()
            }
        });
        let subcommand = path.file_name().is_none_or(|name| name != "weft-proxy");
        Self { path, subcommand }
    }

    /// For the report: the executable's path (which says which build ran,
    /// e.g. `target/dist/weft-proxy`), followed by `proxy` for the
    /// all-in-one binary.
    pub fn describe(&self) -> String {
        let path = self.path.display();
        if self.subcommand {
            format!("{path} proxy")
        } else {
            path.to_string()
        }
    }
}

/// Arguments of the proxy executable for a Dataplane file.
pub fn proxy_args(exe: &ProxyExe, file: &Path, cp_dp: &str, caps: &Capabilities) -> Vec<String> {
    let mut args: Vec<String> = exe.subcommand.then(|| "proxy".into()).into_iter().collect();
    args.extend([
        "--dataplane-file".into(),
        file.display().to_string(),
        "--cp".into(),
        cp_dp.into(),
    ]);
    args.extend(caps.proxy_args());
    args
}

pub async fn start(ctx: &Ctx, backend: &Backend, security: Security) -> anyhow::Result<Running> {
    let cp = cpscale::start_control_plane(
        &ctx.weft,
        "weft-control-plane",
        ctx.proxy_cpus.as_deref(),
        &ctx.logs,
    )
    .await?;
    let mesh = mesh(security, &cp.caps).context("this Weft topology is not available yet")?;
    if security != Security::Plaintext {
        rest::apply(&cp.api, cp.token.as_deref(), vec![mesh]).await?;
    }
    let ports = Ports::fresh();
    let mut proxies = Vec::new();
    for (role, dataplane, admin) in [
        (
            "server",
            server_dataplane(&ports, backend),
            ports.server_admin,
        ),
        ("caller", caller_dataplane(&ports), ports.caller_admin),
    ] {
        let file = ctx.dir.join(format!("weft-{role}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&dataplane)?)?;
        let proc = Spawn::new(&format!("weft-proxy-{role}"), &ctx.proxy.path, &ctx.logs)
            .args(proxy_args(&ctx.proxy, &file, &cp.dp, &cp.caps))
            .cpus(ctx.proxy_cpus.as_deref())
            .env("RUST_LOG", "info")
            .start()?;
        rest::wait_ok(
            &format!("http://127.0.0.1:{admin}/ready"),
            Duration::from_secs(20),
        )
        .await
        .with_context(|| proc.log_tail())?;
        proxies.push((role.to_owned(), proc));
    }
    wait_endpoints(ports.caller_admin, 1, Duration::from_secs(20)).await?;
    if security == Security::Mtls {
        refuses_plaintext(local(ports.inbound[0])).await?;
    }
    let [http, h2, grpc, tcp] = ports.outbound.map(|p| Some(local(p)));
    Ok(Running {
        lanes: Lanes {
            http,
            h2,
            grpc,
            tcp,
        },
        proxies,
        others: vec![cp.proc],
        weft: Some(WeftPair {
            dp_url: cp.dp,
            ports,
        }),
    })
}

/// Checks that a strict-mTLS inbound does not answer a plaintext request.
async fn refuses_plaintext(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let answered = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        crate::clients::http1::get(&mut stream, true).await.ok()
    };
    let answer = tokio::time::timeout(Duration::from_secs(3), answered)
        .await
        .ok()
        .flatten();
    anyhow::ensure!(
        answer.is_none(),
        "the server proxy's inbound {addr} answered plaintext HTTP in a strict mTLS mesh"
    );
    Ok(())
}

/// What the memory tests need to know about a running Weft pair.
#[derive(Debug, Clone)]
pub struct WeftPair {
    pub dp_url: String,
    pub ports: Ports,
}

/// Endpoints the caller's `/config` lists per outbound service.
pub async fn endpoint_counts(caller_admin: u16) -> anyhow::Result<Vec<(String, usize)>> {
    let config = rest::get_json(&format!("http://127.0.0.1:{caller_admin}/config"), None).await?;
    Ok(config["outbounds"]
        .as_array()
        .map(|outs| {
            outs.iter()
                .map(|o| {
                    let service = o["service"].as_str().unwrap_or_default().to_owned();
                    (service, o["endpoints"].as_array().map_or(0, Vec::len))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Waits until every outbound of the caller lists at least `min` endpoints.
pub async fn wait_endpoints(
    caller_admin: u16,
    min: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let counts = endpoint_counts(caller_admin).await.unwrap_or_default();
        if counts.len() == SERVICES.len() && counts.iter().all(|(_, n)| *n >= min) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the caller proxy's outbounds did not reach {min} endpoints each within {timeout:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Ports {
        Ports {
            inbound: [21001, 21002, 21003, 21004],
            outbound: [31001, 31002, 31003, 31004],
            caller_inbound: 21100,
            caller_app: 21101,
            server_admin: 29901,
            caller_admin: 29902,
        }
    }

    #[test]
    fn dataplanes_are_valid_resources() {
        let backend = Backend::fake(8001, 8002, 8003);
        for dp in [
            server_dataplane(&ports(), &backend),
            caller_dataplane(&ports()),
        ] {
            weft_api::Resource::from_value(dp.clone()).unwrap_or_else(|e| panic!("{dp}: {e}"));
        }
        let server = server_dataplane(&ports(), &backend);
        assert_eq!(server["networking"]["inbound"][2]["servicePort"], 8002);
        assert_eq!(
            server["networking"]["inbound"][2]["tags"]["protocol"],
            "grpc"
        );
    }

    #[test]
    fn proxy_executable_is_weft_proxy_unless_told() {
        let dir = std::env::temp_dir().join(format!("weft-bench-exe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let weft = dir.join("weft");
        let alone = ProxyExe::choose(None, &weft);
        assert!(alone.subcommand);
        assert_eq!(alone.describe(), format!("{} proxy", weft.display()));
        std::fs::write(dir.join("weft-proxy"), "").unwrap();
        let sibling = ProxyExe::choose(None, &weft);
        assert!(!sibling.subcommand);
        assert_eq!(sibling.path, dir.join("weft-proxy"));
        let dist = ProxyExe::choose(Some("target/dist/weft-proxy".into()), &weft);
        assert_eq!(dist.describe(), "target/dist/weft-proxy");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mtls_needs_a_weft_that_can_do_it() {
        let old = Capabilities::default();
        assert!(unavailable(Security::Plaintext, &old).is_none());
        assert!(
            unavailable(Security::Mtls, &old)
                .unwrap()
                .starts_with("not available yet")
        );
        let new = Capabilities {
            ca_key_file: true,
            ..Capabilities::default()
        };
        assert!(unavailable(Security::Mtls, &new).is_none());
        assert_eq!(
            mesh(Security::Mtls, &new).unwrap()["mtls"]["mode"],
            "strict"
        );
        weft_api::Resource::from_value(mesh(Security::Plaintext, &old).unwrap()).unwrap();
    }
}
