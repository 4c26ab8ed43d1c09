//! Building blocks for policy tests: steerable backends behind their own
//! proxies, a caller with an outbound, and waiting until a policy reached
//! a proxy.

use std::{sync::Arc, time::Duration};

use crate::{
    ControlPlane, DataplaneSpec, Proxy, TestMesh,
    behavior::{Behavior, behavior_server},
    free_port,
    servers::{ServerHandle, http_get},
    wait,
};

/// A [`behavior_server`] app and its proxy.
pub struct Backend {
    pub server: ServerHandle,
    pub behavior: Arc<Behavior>,
    pub proxy: Proxy,
}

/// A Retry policy `retry-5xx` from `web` to `backend` (the services of
/// [`TestMesh::pair`]): up to six attempts on 5xx within a 50 % budget.
pub const RETRY_5XX: &str = "type: Retry\nmesh: default\nname: retry-5xx\n\
     selector: { from: { service: web }, to: { service: backend } }\n\
     spec: { attempts: 6, retryOn: [5xx], budget: { percent: 50 }, backoff: { base: 2ms, max: 20ms } }\n";

impl TestMesh {
    /// An app `name` of `service` (HTTP) with extra inbound `tags`, behind
    /// its own proxy.
    pub async fn backend(
        &self,
        cp: &ControlPlane,
        name: &str,
        service: &str,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<Backend> {
        self.backend_speaking(cp, name, service, "http", tags).await
    }

    /// [`TestMesh::backend`] declaring `protocol` (`http2`, `grpc`: the
    /// callers' proxies then speak HTTP/2 to it).
    pub async fn backend_speaking(
        &self,
        cp: &ControlPlane,
        name: &str,
        service: &str,
        protocol: &str,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<Backend> {
        let (server, behavior) = behavior_server(name).await;
        let mut spec = DataplaneSpec::new(name, service, protocol, server.port);
        spec.tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let proxy = self.proxy(cp, &spec).await?;
        Ok(Backend {
            server,
            behavior,
            proxy,
        })
    }

    /// The smallest policy scenario: a control plane, one backend
    /// `backend-1` of service `backend`, and a caller reaching it at the
    /// returned URL.
    pub async fn pair(&self) -> anyhow::Result<(ControlPlane, Backend, Proxy, String)> {
        let cp = self.control_plane().await?;
        let backend = self.backend(&cp, "backend-1", "backend", &[]).await?;
        let (caller, url) = self.caller(&cp, "backend", 1).await?;
        Ok((cp, backend, caller, url))
    }

    /// [`TestMesh::pair`] in a strict-mTLS mesh with a builtin CA.
    pub async fn strict_mtls_pair(&self) -> anyhow::Result<(ControlPlane, Backend, Proxy, String)> {
        let cp = self.control_plane().await?;
        self.apply_ok(
            &cp,
            "type: Mesh\nname: default\nmtls:\n  mode: strict\n  ca: { type: builtin }\n  certificateLifetime: 24h\n",
        )
        .await?;
        let backend = self.backend(&cp, "backend-1", "backend", &[]).await?;
        let (caller, url) = self.caller(&cp, "backend", 1).await?;
        Ok((cp, backend, caller, url))
    }

    /// A TCP echo app `echo-1` of service `echo` behind its proxy, and a
    /// caller `web-1` with a TCP outbound to it: the app, both proxies and
    /// the outbound's port.
    pub async fn tcp_echo_pair(
        &self,
        cp: &ControlPlane,
    ) -> anyhow::Result<(ServerHandle, Proxy, Proxy, u16)> {
        let echo = crate::servers::tcp_echo_server().await;
        let backend = self
            .proxy(cp, &DataplaneSpec::new("echo-1", "echo", "tcp", echo.port))
            .await?;
        let mut spec = DataplaneSpec::new("web-1", "web", "tcp", free_port());
        let port = spec.outbound("echo");
        let caller = self.proxy(cp, &spec).await?;
        Ok((echo, backend, caller, port))
    }

    /// Backends of `service` named `names`, without extra tags.
    pub async fn backends(
        &self,
        cp: &ControlPlane,
        service: &str,
        names: &[&str],
    ) -> anyhow::Result<Vec<Backend>> {
        let mut backends = Vec::with_capacity(names.len());
        for name in names {
            backends.push(self.backend(cp, name, service, &[]).await?);
        }
        Ok(backends)
    }

    /// Applies a policy document and waits until `proxy` runs it (its
    /// `name` shows in the proxy's config).
    pub async fn apply_policy(
        &self,
        cp: &ControlPlane,
        proxy: &Proxy,
        name: &str,
        yaml: &str,
    ) -> anyhow::Result<()> {
        self.apply_ok(cp, yaml).await?;
        wait_for_config(proxy, name, true).await
    }

    /// A caller `web-1` of service `web` with an outbound to `service`;
    /// returns its proxy and the outbound's URL once `expected` apps answer
    /// through it.
    pub async fn caller(
        &self,
        cp: &ControlPlane,
        service: &str,
        expected: usize,
    ) -> anyhow::Result<(Proxy, String)> {
        self.caller_as(cp, ("web-1", "web"), service, expected)
            .await
    }

    /// [`TestMesh::caller`] as Dataplane `name` of service `own`.
    pub async fn caller_as(
        &self,
        cp: &ControlPlane,
        (name, own): (&str, &str),
        service: &str,
        expected: usize,
    ) -> anyhow::Result<(Proxy, String)> {
        let mut spec = DataplaneSpec::new(name, own, "http", free_port());
        let port = spec.outbound(service);
        let proxy = self.proxy(cp, &spec).await?;
        let url = format!("http://127.0.0.1:{port}/");
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        wait::until(
            &format!("{expected} apps answering through {url}"),
            Duration::from_secs(15),
            || async {
                let answer = http_get(&url).await;
                let mut seen = seen.lock().ok()?;
                if let Ok((200, body)) = answer {
                    seen.insert(body);
                }
                (seen.len() >= expected).then_some(())
            },
        )
        .await?;
        Ok((proxy, url))
    }

    /// `weft apply` that must succeed.
    pub async fn apply_ok(&self, cp: &ControlPlane, yaml: &str) -> anyhow::Result<()> {
        let out = self.apply(cp, yaml).await?;
        anyhow::ensure!(
            out.status.success(),
            "weft apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// Waits until `proxy` runs a config whose `/config` mentions `needle`
/// (a policy name), or no longer does when `present` is false.
pub async fn wait_for_config(proxy: &Proxy, needle: &str, present: bool) -> anyhow::Result<()> {
    let quoted = format!("\"{needle}\"");
    wait::until(
        &format!("{needle} in the proxy's config: {present}"),
        Duration::from_secs(15),
        || async {
            let config = proxy.config().await.ok()?.to_string();
            (config.contains(&quoted) == present).then_some(())
        },
    )
    .await
}

/// Whether `byte` comes back over `conn` within 3 s (an echo through the
/// mesh); `false` when the connection was closed or stayed silent.
pub async fn echoes(conn: &mut tokio::net::TcpStream, byte: u8) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if conn.write_all(&[byte]).await.is_err() {
        return false;
    }
    let mut back = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut back)).await;
    matches!(read, Ok(Ok(1))) && back[0] == byte
}
