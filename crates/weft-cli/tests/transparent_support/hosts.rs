//! Starting the cluster's processes: the control plane, the mesh, and
//! each host's application, rules and proxy.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Output};

use weft_testkit::{process::TestProcess, wait};

use super::{APP_UID, CP_API, Cluster, PROXY_UID, TIMEOUT, WEFT};

impl Cluster {
    pub(super) async fn start_control_plane(&mut self) {
        let key = self.file("ca.key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        let args: Vec<String> = [
            "control-plane",
            "--store",
            &format!("sqlite:{}", self.dir.join("store.db").display()),
            "--api-addr",
            "127.0.0.1:5681",
            "--dp-addr",
            "10.77.0.1:5678",
            "--ca-key-file",
            &key.display().to_string(),
            "--admin-token-file",
            &self.dir.join("admin-token").display().to_string(),
            "--cp-ca-file-out",
            &self.dir.join("cp-ca.pem").display().to_string(),
            // A host that vanishes must leave the balancers within a second.
            "--dp-keepalive-interval",
            "250ms",
            "--dp-keepalive-timeout",
            "250ms",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let cp = self
            .net
            .spawn(
                self.net.host(1),
                None,
                "control-plane",
                Path::new(WEFT),
                &args,
                &self.dir,
            )
            .unwrap();
        self.processes.push(cp);
        let host = self.net.host(1).clone();
        let net = &self.net;
        wait::until("control plane healthy", TIMEOUT, || async {
            let out = net
                .exec(&host, None, &["curl", "-sf", &format!("{CP_API}/healthz")])
                .await
                .ok()?;
            out.status.success().then_some(())
        })
        .await
        .unwrap();
        let pem = self.dir.join("cp-ca.pem");
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// `weft ARGS` on the control plane's host, as the operator.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let token_file = self.dir.join("admin-token").display().to_string();
        let mut argv = vec![WEFT];
        argv.extend(args);
        argv.extend(["--cp", CP_API, "--admin-token-file", &token_file]);
        let out = self.net.exec(self.net.host(1), None, &argv).await.unwrap();
        assert!(
            out.status.success(),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The mesh: strict mTLS, and `outside` for `outsideMesh`.
    pub async fn apply_mesh(&self, outside: &str) {
        let file = self.file(
            &format!("mesh-{outside}.yaml"),
            &format!(
                "type: Mesh\nname: default\nmtls: {{ mode: strict }}\n\
                 transparentProxying: {{ outsideMesh: {outside} }}\n"
            ),
        );
        self.cli(&["apply", "-f", &file.display().to_string()])
            .await;
    }

    /// Host `i`: its application, rules and proxy (the app answers with
    /// `<service>-<i>`).
    pub(super) async fn start_workload(&mut self, i: usize, service: &str) {
        let name = format!("{service}-{i}");
        let host = self.net.host(i).clone();
        let app = self.app(i, &name, "127.0.0.1", 8080);
        self.processes.push(app);
        let token = self
            .cli(&[
                "token",
                "dataplane",
                "--mesh",
                "default",
                "--service",
                service,
            ])
            .await;
        let token_file = self.file(
            &format!("{name}.token"),
            String::from_utf8_lossy(&token.stdout).trim(),
        );
        let dataplane = self.file(
            &format!("{name}.yaml"),
            &format!(
                "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: {ip}\n  \
                 inbound:\n    - port: 20001\n      servicePort: 8080\n      \
                 tags: {{ service: {service}, protocol: http }}\n  \
                 transparentProxying: {{ redirectPortDns: 15053 }}\n",
                ip = host.ip
            ),
        );
        let install = self
            .net
            .exec(
                &host,
                None,
                &[
                    WEFT,
                    "install",
                    "transparent-proxy",
                    "--proxy-uid",
                    &PROXY_UID.to_string(),
                    "--redirect-dns",
                ],
            )
            .await
            .unwrap();
        assert!(
            install.status.success(),
            "{}",
            String::from_utf8_lossy(&install.stderr)
        );
        let args: Vec<String> = [
            "proxy",
            "--dataplane-file",
            &dataplane.display().to_string(),
            "--token-file",
            &token_file.display().to_string(),
            "--cp",
            "https://10.77.0.1:5678",
            "--cp-ca-file",
            &self.dir.join("cp-ca.pem").display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let proxy = self
            .net
            .spawn(
                &host,
                Some(PROXY_UID),
                &format!("proxy-{name}"),
                Path::new(WEFT),
                &args,
                &self.dir,
            )
            .unwrap();
        let net = &self.net;
        wait::until(&format!("proxy {name} ready"), TIMEOUT, || async {
            let out = net
                .exec(&host, None, &["curl", "-sf", "http://127.0.0.1:9901/ready"])
                .await
                .ok()?;
            out.status.success().then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", proxy.log_text()));
        if service == "client" {
            self.client_proxy = Some(proxy);
        } else {
            self.processes.push(proxy);
        }
    }

    pub(super) fn app(&self, i: usize, name: &str, address: &str, port: u16) -> TestProcess {
        let args: Vec<String> = [
            "demo-app",
            "--name",
            name,
            "--address",
            address,
            "--port",
            &port.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        self.net
            .spawn(
                self.net.host(i),
                Some(APP_UID),
                &format!("app-{name}"),
                Path::new(WEFT),
                &args,
                &self.dir,
            )
            .unwrap()
    }
}
