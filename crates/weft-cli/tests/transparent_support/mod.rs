//! The hosts of the transparent-proxy tests: a control plane on host 1,
//! a client on host 2 and `backend` instances on hosts 3-5, each with its
//! application (uid [`APP_UID`]), its proxy (uid [`PROXY_UID`]) and the
//! transparent-proxy rules with DNS redirection. A plain server outside
//! the mesh listens on host 4, port 9090, on its IPv4 and IPv6 addresses;
//! the client host's resolver is a stand-in on host 1.

mod hosts;

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Output, time::Duration};

use weft_testkit::{
    netns::{self, Host, Network, resolver},
    process::TestProcess,
    wait,
};

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");
/// The proxies' uid: the rules let its traffic out untouched.
pub const PROXY_UID: u32 = 1337;
/// The applications' uid (curl included): its traffic is redirected.
pub const APP_UID: u32 = 2000;
/// What the client host's resolver answers for every name.
pub const RESOLVER_ANSWER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 55);
pub(super) const CP_API: &str = "http://127.0.0.1:5681";
pub(super) const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub net: Network,
    pub dir: PathBuf,
    pub(super) processes: Vec<TestProcess>,
    pub(super) client_proxy: Option<TestProcess>,
}

impl Cluster {
    pub async fn start() -> Self {
        netns::require();
        let net = Network::create(5).await.unwrap();
        let dir = std::env::temp_dir().join(format!(
            "weft-tproxy-{}-{}",
            std::process::id(),
            fastish_id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The proxies run as another user and read their files from here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cluster = Cluster {
            net,
            dir,
            processes: Vec::new(),
            client_proxy: None,
        };
        // The client host's resolver, for names outside the mesh: a stand-in
        // on host 1 that answers everything with RESOLVER_ANSWER.
        let socket = resolver::bind_udp(cluster.net.host(1), 53).unwrap();
        tokio::spawn(resolver::answer_all(socket, RESOLVER_ANSWER));
        cluster
            .net
            .set_resolver(cluster.net.host(2), cluster.net.host(1).ip)
            .unwrap();
        cluster.start_control_plane().await;
        cluster.apply_mesh("passthrough").await;
        cluster.start_workload(2, "client").await;
        for host in 3..=5 {
            cluster.start_workload(host, "backend").await;
        }
        let plain = cluster.app(4, "plain", "10.77.0.4", 9090);
        cluster.processes.push(plain);
        let plain6 = cluster.app(4, "plain6", "fd77::4", 9090);
        cluster.processes.push(plain6);
        cluster
            .wait_for_client_config(|config| {
                config["transparent"]["services"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["name"] == "backend"))
                    .and_then(|b| b["endpoints"].as_array())
                    .is_some_and(|e| e.len() == 3)
            })
            .await;
        cluster
    }

    pub(super) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Waits until the client proxy's `/config` satisfies `check`.
    pub async fn wait_for_client_config(&self, check: impl Fn(&serde_json::Value) -> bool) {
        let host = self.net.host(2);
        let net = &self.net;
        let check = &check;
        wait::until("the client proxy's config", TIMEOUT, || async move {
            let out = net
                .exec(host, None, &["curl", "-sf", "http://127.0.0.1:9901/config"])
                .await
                .ok()?;
            let config: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            check(&config).then_some(())
        })
        .await
        .unwrap();
    }

    /// curl as the application user on `host` (5 s at most).
    pub async fn curl(&self, host: &Host, url: &str) -> Output {
        self.curl_with(host, &[], url).await
    }

    /// [`Cluster::curl`] with more curl arguments.
    pub async fn curl_with(&self, host: &Host, extra: &[&str], url: &str) -> Output {
        let mut argv = vec!["curl", "-g", "-sS", "--fail", "--max-time", "5"];
        argv.extend(extra);
        argv.push(url);
        self.net.exec(host, Some(APP_UID), &argv).await.unwrap()
    }

    /// [`Cluster::curl`] that must succeed; returns the body.
    pub async fn curl_ok(&self, host: &Host, url: &str) -> String {
        self.curl_ok_with(host, &[], url).await
    }

    /// [`Cluster::curl_with`] that must succeed; returns the body.
    pub async fn curl_ok_with(&self, host: &Host, extra: &[&str], url: &str) -> String {
        let out = self.curl_with(host, extra, url).await;
        assert!(
            out.status.success(),
            "curl {url} on {}: {}\n--- client proxy log ---\n{}",
            host.ns,
            String::from_utf8_lossy(&out.stderr),
            self.client_proxy_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Retries until curl (without `--fail`) reports HTTP `status` for `url`.
    pub async fn wait_for_status(&self, host: &Host, url: &str, status: &str) {
        let argv = [
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ];
        wait::until(&format!("{url} to answer {status}"), TIMEOUT, || async {
            let out = self.net.exec(host, Some(APP_UID), &argv).await.ok()?;
            (String::from_utf8_lossy(&out.stdout) == status).then_some(())
        })
        .await
        .unwrap();
    }

    /// Retries [`Cluster::curl`] until it succeeds (a config on its way).
    pub async fn wait_until_ok(&self, host: &Host, url: &str) {
        wait::until(&format!("curl {url} to succeed"), TIMEOUT, || async {
            self.curl(host, url).await.status.success().then_some(())
        })
        .await
        .unwrap();
    }

    /// `weft uninstall transparent-proxy` on `host`, checked.
    pub async fn uninstall(&self, host: &Host) {
        let out = self
            .net
            .exec(host, None, &[WEFT, "uninstall", "transparent-proxy"])
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let check = self
            .net
            .exec(host, None, &[WEFT, "check", "transparent-proxy"])
            .await
            .unwrap();
        assert!(
            !check.status.success(),
            "rules still reported after uninstall"
        );
        let nat = self
            .net
            .exec(host, None, &["iptables-save", "-t", "nat"])
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&nat.stdout).contains("WEFT"));
    }

    /// The value of the counter `series` (name and labels) in the
    /// `/metrics` of host `i`'s proxy; 0 when absent.
    pub async fn counter(&self, i: usize, series: &str) -> u64 {
        let out = self
            .net
            .exec(
                self.net.host(i),
                None,
                &["curl", "-sf", "http://127.0.0.1:9901/metrics"],
            )
            .await
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn client_proxy_log(&self) -> String {
        self.client_proxy
            .as_ref()
            .map(TestProcess::log_text)
            .unwrap_or_default()
    }

    pub async fn stop_client_proxy(&mut self) {
        if let Some(mut p) = self.client_proxy.take() {
            p.terminate(Duration::from_secs(10)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn fastish_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
